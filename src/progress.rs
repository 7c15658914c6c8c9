//! A progress line on stderr for runs longer than a second, when stderr is a terminal and the
//! output is the human table (never in JSON/NDJSON modes or with `--quiet`). Output lines on
//! stdout and the spinner on stderr never interleave: writing a report line first pauses and
//! clears the spinner.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Delay before the spinner first appears.
const SHOW_AFTER: Duration = Duration::from_secs(1);
const FRAMES: [&str; 4] = ["|", "/", "-", "\\"];

#[derive(Default)]
struct Line {
    shown: bool,
}

/// A running spinner; stops (and clears its line) on drop.
pub struct Spinner {
    line: Arc<Mutex<Line>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// While held, the spinner stays off the screen (the caller writes to stdout).
pub struct Paused<'a>(#[allow(dead_code)] MutexGuard<'a, Line>);

fn clear(line: &mut Line) {
    if line.shown {
        let mut err = std::io::stderr();
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
        line.shown = false;
    }
}

impl Spinner {
    /// Start a spinner labelled `what` (e.g. "check"), or `None` when progress is off.
    pub fn start(enabled: bool, what: &str) -> Option<Spinner> {
        if !enabled {
            return None;
        }
        let line: Arc<Mutex<Line>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s, what) = (line.clone(), stop.clone(), what.to_string());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut frame = 0;
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let elapsed = started.elapsed();
                if elapsed < SHOW_AFTER || s.load(Ordering::Relaxed) {
                    continue;
                }
                let mut g = l.lock().unwrap_or_else(|e| e.into_inner());
                let mut err = std::io::stderr();
                let _ = write!(
                    err,
                    "\r{} iceprobe {what}: {:.1} s (Ctrl-C stops; allocations are still released)\x1b[K",
                    FRAMES[frame % FRAMES.len()],
                    elapsed.as_secs_f64()
                );
                let _ = err.flush();
                g.shown = true;
                frame += 1;
            }
        });
        Some(Spinner {
            line,
            stop,
            thread: Some(thread),
        })
    }

    /// Clear the spinner and keep it away until the guard drops.
    pub fn pause(&self) -> Paused<'_> {
        let mut g = self.line.lock().unwrap_or_else(|e| e.into_inner());
        clear(&mut g);
        Paused(g)
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        clear(&mut self.line.lock().unwrap_or_else(|e| e.into_inner()));
    }
}
