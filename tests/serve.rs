//! `llmc serve` on a CPU plan of a fixture (4,096 tokens of context, so answers can be long enough
//! to time): the real `openai` Python client against the running server (tests/serve_client.py,
//! one case per test), and Ctrl-C / SIGTERM from here. `LLMC_SERVE_TEST_TARGET=sm_90` runs the
//! same tests on a GPU plan (bench/results/2026-11-30-h200-serve-tests.sh).
//!
//! The tests take turns: the queue and disconnect checks time the server, and a server beside
//! them would share its two cores.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const FIXTURE: &str = "llama_tied_bias";

fn plan(dir: &Path) -> PathBuf {
    let model = fixture_with_context(FIXTURE, dir, 4096);
    let plan = dir.join("served.plan");
    let target = std::env::var("LLMC_SERVE_TEST_TARGET").unwrap_or_else(|_| "cpu".into());
    let status = Command::new(env!("CARGO_BIN_EXE_llmc"))
        .args(["compile", model.to_str().unwrap(), "-o", plan.to_str().unwrap(), "--target", &target, "--max-seq-len", "4096"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    plan
}

/// A running `llmc serve PLAN --port 0 ARGS`, killed on drop.
struct Server {
    child: Child,
    /// host:port, from the line it prints once it listens.
    addr: String,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Server {
    fn start(plan: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_llmc"))
            .args(["serve", plan.to_str().unwrap(), "--port", "0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, stderr) = std::sync::mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| drop(tx.send(l))));
        let listening = stderr.recv_timeout(Duration::from_secs(60)).expect("the server printed nothing");
        let addr =
            listening.split("http://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or_else(|| panic!("no address in {listening:?}")).to_string();
        Server { child, addr, stderr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs `tests/serve_client.py CASE URL MODEL ARGS` and fails with its output if it fails.
    fn client(&self, case: &str, args: &[&str]) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve_client.py");
        let out = Command::new("python3")
            .arg(script)
            .args([case, &self.url(), "served"])
            .args(args)
            .output()
            .expect("python3 runs tests/serve_client.py (with `pip install openai`: scripts/test.sh installs it)");
        let log: Vec<String> = self.stderr.try_iter().collect();
        assert!(
            out.status.success(),
            "serve_client.py {case} failed:\n{}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            log.join("\n")
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn served(args: &[&str]) -> (tempfile::TempDir, Server, std::sync::MutexGuard<'static, ()>) {
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&plan(dir.path()), args);
    (dir, server, turn)
}

#[test]
fn openai_client_chats_and_completes_streamed_or_not_with_seeds_stop_strings_and_logprobs() {
    let (_dir, server, _turn) = served(&[]);
    server.client("basics", &[]);
}

#[test]
fn greedy_answers_equal_llmc_run() {
    let (dir, server, _turn) = served(&[]);
    let plan = dir.path().join("served.plan");
    let cases: Vec<serde_json::Value> = [("abc", false), ("1 2 3", false), ("Once upon a time", true), ("abc", true)]
        .into_iter()
        .map(|(prompt, chat)| {
            let mut run = Command::new(env!("CARGO_BIN_EXE_llmc"));
            run.args(["run", plan.to_str().unwrap(), "--prompt", prompt, "--max-tokens", "24"]);
            if chat {
                run.arg("--chat");
            }
            let out = run.stderr(Stdio::null()).output().unwrap();
            assert!(out.status.success());
            // `run` ends its answer with a newline.
            let text = String::from_utf8(out.stdout).unwrap().strip_suffix('\n').unwrap().to_string();
            serde_json::json!({ "prompt": prompt, "chat": chat, "max_tokens": 24, "text": text })
        })
        .collect();
    server.client("equals_run", &[&serde_json::to_string(&cases).unwrap()]);
}

#[test]
fn a_full_queue_answers_429_and_concurrent_answers_equal_serial_ones() {
    let (_dir, server, _turn) = served(&["--queue", "16"]);
    server.client("concurrency", &["16"]);
}

#[test]
fn a_client_that_disconnects_frees_the_server_at_the_next_token() {
    let (_dir, server, _turn) = served(&[]);
    server.client("disconnect", &[]);
}

#[test]
fn a_second_chat_turn_prefills_only_its_new_tokens() {
    let (_dir, server, _turn) = served(&[]);
    server.client("cache", &[]);
}

#[test]
fn bad_requests_get_openai_errors_and_the_server_goes_on() {
    let (_dir, server, _turn) = served(&[]);
    server.client("bad_requests", &[]);
}

/// (status, body) of one request with `Connection: close`.
fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string())
}

/// Ctrl-C (SIGINT) and SIGTERM: the running request is cut at its next token and answered 503,
/// and the server exits 0.
#[test]
fn ctrl_c_or_sigterm_cancels_the_running_request_and_exits_0() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let (_dir, mut server, _turn) = served(&[]);
        let addr = server.addr.clone();
        let long = r#"{"model": "served", "prompt": "abc", "max_tokens": 4000, "temperature": 0}"#;
        let running = std::thread::spawn(move || request(&addr, "POST", "/v1/completions", long));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !request(&server.addr, "GET", "/health", "").1.contains(r#""running_or_queued":1"#) {
            assert!(Instant::now() < deadline, "the request never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: a plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(server.child.id() as i32, signal) }, 0);
        let (status, body) = running.join().unwrap();
        assert_eq!(status, 503, "signal {signal}: {body}");
        assert!(body.contains("shutting down"), "{body}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                break status.code();
            }
            assert!(Instant::now() < deadline, "signal {signal}: the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(code, Some(0), "signal {signal}");
        // Every line the server wrote: the reader thread ends at the closed pipe's end of file
        // (`try_iter` raced it, and lost on a busy machine).
        let log: Vec<String> = server.stderr.iter().collect();
        assert!(log.iter().any(|l| l.contains("shutting down")), "{log:?}");
    }
}
