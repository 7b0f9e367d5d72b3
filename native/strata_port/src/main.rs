//! strata_port: strata's storage engine as an Erlang port program.
//!
//! The same `strata_core` as the NIF, out of the VM's process, so that a crash of the engine
//! cannot take the VM down. Started by `strata_port.erl` with `{packet, 4}` on stdin/stdout;
//! each frame is one term in external term format (see `wire`).
//!
//! Threads, every queue between them bounded:
//! - the reader (main thread) decodes each frame and runs it at once on the non-blocking path
//!   (memtable and block cache only, no lock waits, no write stalls: the NIF's fast path);
//! - when that path would block, or the request always waits on the disk, the request goes to a
//!   small pool of workers through a bounded channel; a full channel stops the reader, the pipe
//!   fills and the Erlang side sees a busy port (back-pressure all the way to the callers);
//! - sync commits go to the core's group-commit writer, which answers when the fsync is done;
//! - replies of requests run on the reader are written by the reader itself, gathered until it
//!   has no complete frame left to run (so one write carries many replies under load and none
//!   waits); the replies of workers and of the group-commit writer go through one writer
//!   thread, which gathers them the same way. Both write whole frames under one lock.
//!
//! Replies can therefore come out of order; `ReqId` matches them. At the end of input (the VM
//! closed the port or died) the program finishes what it has, closes the store and exits, so
//! it never outlives the VM; a watchdog exits anyway if that takes too long.

mod engine;
mod wire;

use crossbeam::channel::{self, Receiver, Sender};
use eetf::Term;
use engine::{Deliver, Engine, Fail, Request};
use parking_lot::Mutex;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::FromRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Largest frame accepted: a value's maximum size plus room for the request around it.
const MAX_FRAME: usize = strata_core::store::MAX_VALUE_BYTES + (1 << 20);
/// Workers for requests that may block.
const WORKERS: usize = 2;
/// Requests waiting for a worker at most.
const JOB_QUEUE: usize = 256;
/// Replies waiting for stdout at most.
const REPLY_QUEUE: usize = 1024;
/// How long closing may take after the end of input before the program exits regardless.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

struct Job {
    id: Term,
    req: Request,
}

/// Standard output, written in whole frames by the reader and the writer thread.
struct Output {
    stdout: Mutex<File>,
}

impl Output {
    fn new() -> Output {
        // SAFETY: fd 1 is this process's stdout, open for its whole life and written only
        // through this handle (std's own `Stdout` would add line buffering to binary frames).
        let file = unsafe { File::from_raw_fd(1) };
        Output {
            stdout: Mutex::new(file),
        }
    }

    /// Writes whole frames. Once stdout is gone (the VM died) replies are dropped: nobody
    /// reads them, and the end of input follows.
    fn write(&self, frames: &[u8]) {
        if !frames.is_empty() {
            let _ = self.stdout.lock().write_all(frames);
        }
    }
}

fn main() {
    // Panics are answered as errors (see `run`); keep their report short on stderr.
    panic::set_hook(Box::new(|info| eprintln!("strata_port: {info}")));
    let engine = Arc::new(Engine::default());
    let output = Arc::new(Output::new());
    let (reply_tx, reply_rx) = channel::bounded::<Vec<u8>>(REPLY_QUEUE);
    let writer = {
        let output = output.clone();
        thread::Builder::new()
            .name("strata-port-out".into())
            .spawn(move || write_replies(&output, reply_rx))
            .expect("writer thread")
    };
    let (job_tx, job_rx) = channel::bounded::<Job>(JOB_QUEUE);
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let (engine, jobs, out) = (engine.clone(), job_rx.clone(), reply_tx.clone());
            thread::Builder::new()
                .name(format!("strata-port-{i}"))
                .spawn(move || work(&engine, &jobs, &out))
                .expect("worker thread")
        })
        .collect();
    drop(job_rx);

    read_requests(&engine, &output, &job_tx, &reply_tx);

    // End of input: nobody will read more replies than those already asked for.
    thread::spawn(|| {
        thread::sleep(SHUTDOWN_GRACE);
        eprintln!("strata_port: shutdown took too long, exiting");
        std::process::exit(2);
    });
    drop(job_tx);
    for w in workers {
        let _ = w.join();
    }
    engine.shutdown();
    drop(reply_tx);
    let _ = writer.join();
}

/// Reads frames until the end of input, running or dispatching each.
fn read_requests(engine: &Engine, output: &Output, jobs: &Sender<Job>, out: &Sender<Vec<u8>>) {
    let mut input = BufReader::with_capacity(1 << 16, io::stdin().lock());
    let mut frame = Vec::new();
    // Replies of requests run here, written when no complete frame is left to run.
    let mut replies = Vec::new();
    loop {
        if input.buffer().len() < 4 {
            output.write(&replies);
            replies.clear();
        }
        let mut len = [0u8; 4];
        if input.read_exact(&mut len).is_err() {
            output.write(&replies);
            return;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            output.write(&replies);
            replies.clear();
            // Skip it without holding it in memory, and say why.
            if io::copy(&mut (&mut input).take(len as u64), &mut io::sink()).is_err() {
                return;
            }
            let why = Fail::BadRequest(format!("frame of {len} bytes is over {MAX_FRAME}"));
            send(out, wire::atom("undefined"), why.term());
            continue;
        }
        if input.buffer().len() < len {
            output.write(&replies);
            replies.clear();
        }
        frame.resize(len, 0);
        if input.read_exact(&mut frame).is_err() {
            return;
        }
        let (id, req) = match wire::decode(&frame) {
            Ok(x) => x,
            Err((id, why)) => {
                replies.extend(wire::encode_reply(id, Fail::BadRequest(why).term()));
                continue;
            }
        };
        let req = match engine::parse(req) {
            Ok(r) => r,
            Err(fail) => {
                replies.extend(wire::encode_reply(id, fail.term()));
                continue;
            }
        };
        if req.blocks() {
            let _ = jobs.send(Job { id, req });
            continue;
        }
        match run(engine, &id, &req, false, out) {
            Err(Fail::Core(strata_core::Error::WouldBlock)) => {
                let _ = jobs.send(Job { id, req });
            }
            Ok(Some(reply)) => replies.extend(wire::encode_reply(id, reply)),
            Ok(None) => {}
            Err(fail) => replies.extend(wire::encode_reply(id, fail.term())),
        }
        // Keep the gathered replies bounded when frames keep coming.
        if replies.len() >= 1 << 16 {
            output.write(&replies);
            replies.clear();
        }
    }
}

/// A worker: runs requests that may block.
fn work(engine: &Engine, jobs: &Receiver<Job>, out: &Sender<Vec<u8>>) {
    for Job { id, req } in jobs {
        let outcome = run(engine, &id, &req, true, out);
        answer(out, id, outcome);
    }
}

/// Runs one request, turning a panic into an error reply.
fn run(
    engine: &Engine,
    id: &Term,
    req: &Request,
    blocking: bool,
    out: &Sender<Vec<u8>>,
) -> Result<Option<Term>, Fail> {
    let deliver = || -> Deliver {
        let (id, out) = (id.clone(), out.clone());
        Box::new(move |r: Result<Term, Fail>| answer(&out, id, r.map(Some)))
    };
    panic::catch_unwind(AssertUnwindSafe(|| engine.execute(req, blocking, deliver))).unwrap_or_else(
        |p| {
            let why = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            Err(Fail::Panic(why))
        },
    )
}

/// Sends the reply of a finished request; `Ok(None)` is a sync commit whose reply comes later.
fn answer(out: &Sender<Vec<u8>>, id: Term, outcome: Result<Option<Term>, Fail>) {
    match outcome {
        Ok(Some(reply)) => send(out, id, reply),
        Ok(None) => {}
        Err(fail) => send(out, id, fail.term()),
    }
}

fn send(out: &Sender<Vec<u8>>, id: Term, reply: Term) {
    // Fails only once the writer is gone, at shutdown; then nobody reads replies.
    let _ = out.send(wire::encode_reply(id, reply));
}

/// The writer: writes the replies of workers and of the group-commit writer, gathering those
/// that wait into one write.
fn write_replies(output: &Output, replies: Receiver<Vec<u8>>) {
    let mut batch = Vec::new();
    while let Ok(frame) = replies.recv() {
        batch.extend_from_slice(&frame);
        while batch.len() < 1 << 16 {
            match replies.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        output.write(&batch);
        batch.clear();
    }
}
