//! `llmc serve`: an OpenAI-compatible HTTP server over one plan. The plan is loaded and its
//! backend made ready (the CUDA graph captured) before the port opens. One thread owns the
//! backend and generates for one request at a time (batch 1); the others wait in a bounded FIFO
//! queue, and past its bound a request is answered 429 at once.
//!
//! `http` is the HTTP layer (routes, checks, OpenAI's response and chunk formats), `api` the
//! request body and error shapes, `worker` the generation thread and its prompt cache, `stop`
//! the stop strings over streamed text.

mod api;
mod http;
mod stop;
mod worker;

use crate::error::{Error, Result};
use crate::exec::sampling::SamplingParams;
use crate::exec::{self, BackendKind};
use crate::plan::file::PlanFile;
use crate::text::Text;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub struct ServeOptions {
    pub host: String,
    pub port: u16,
    /// Requests admitted at once, the one generating included.
    pub queue: usize,
    pub backend: Option<BackendKind>,
}

/// Serves `plan` until Ctrl-C or SIGTERM: then no new connection is accepted, the running
/// request stops at its next token, queued ones are answered 503, and this returns.
pub fn serve(plan: &Path, opts: &ServeOptions) -> Result<()> {
    if opts.queue == 0 {
        return Err(Error::Input("--queue must be at least 1".into()));
    }
    let file = PlanFile::open(plan)?;
    let text = Arc::new(Text::new(&file.plan.tokenizer)?);
    let model = plan.file_stem().map_or_else(|| "llmc".to_string(), |s| s.to_string_lossy().into_owned());
    let limits = worker::Limits { eos_ids: file.plan.tokenizer.eos_ids.clone(), max_seq_len: file.plan.max_seq_len };
    let (max_seq_len, vocab) = (file.plan.max_seq_len, file.plan.io.logits.ty.elements());
    let kind = opts.backend.unwrap_or_else(|| BackendKind::for_plan(&file));
    let shutting_down = Arc::new(AtomicBool::new(false));
    let (jobs, queued) = std::sync::mpsc::channel();
    let (ready, is_ready) = std::sync::mpsc::sync_channel(1);
    let worker_text = text.clone();
    let worker_flag = shutting_down.clone();
    // The backend is made and used on this one thread (a CUDA context stays with its thread).
    // The process exits without joining it: by then every connection has been answered.
    std::thread::Builder::new()
        .name("llmc-generate".into())
        .spawn(move || match exec::open(&file, kind, SamplingParams::GREEDY) {
            Ok(mut backend) => {
                let _ = ready.send(Ok(()));
                worker::run(backend.as_mut(), &worker_text, &limits, queued, &worker_flag);
            }
            Err(e) => {
                let _ = ready.send(Err(e));
            }
        })
        .map_err(|e| Error::Input(format!("cannot start the generation thread: {e}")))?;
    is_ready.recv().map_err(|_| Error::Input("the generation thread stopped while loading the plan".into()))??;

    let addr = format!("{}:{}", opts.host, opts.port);
    let serve_err = |reason| Error::Serve { addr: addr.clone(), reason };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(serve_err)?;
    let server = Arc::new(http::Server {
        model: model.clone(),
        text,
        max_seq_len,
        vocab,
        queue: opts.queue,
        admission: Arc::new(tokio::sync::Semaphore::new(opts.queue)),
        jobs,
        shutting_down: shutting_down.clone(),
        next_id: AtomicU64::new(0),
    });
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await.map_err(serve_err)?;
        let local = listener.local_addr().map_err(serve_err)?;
        eprintln!("serving {model} ({kind:?} backend, {max_seq_len} tokens of context) on http://{local}/v1 (queue {})", opts.queue);
        axum::serve(listener, http::router(server)).with_graceful_shutdown(signalled(shutting_down)).await.map_err(serve_err)
    })?;
    eprintln!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM, after raising `shutting_down` for the generation thread.
async fn signalled(shutting_down: Arc<AtomicBool>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    eprintln!("shutting down: no new requests; the running one stops at its next token");
    shutting_down.store(true, Ordering::SeqCst);
}
