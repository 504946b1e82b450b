//! Watching shared folders for edits, so a change is scanned within a
//! fraction of a second instead of at the next periodic rescan (which stays
//! as the safety net for events a watcher can miss: overflows, network file
//! systems, edits while the node was down).
//!
//! notify calls back on its own thread; the callback only `try_send`s the
//! share's id into a bounded channel (a full channel drops the event: the
//! share is already marked dirty or the rescan will catch it). The event
//! loop marks the share dirty and scans it once no event arrived for
//! [`DEBOUNCE`]: editors write a file in several steps.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// Quiet time after the last event before a share is scanned.
pub const DEBOUNCE: Duration = Duration::from_millis(75);

/// The watchers of all active shares.
pub struct Watch {
    watchers: BTreeMap<Vec<u8>, notify::RecommendedWatcher>,
    tx: mpsc::Sender<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
    dirty: BTreeMap<Vec<u8>, Instant>,
}

impl Watch {
    /// No watchers yet.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel(1024);
        Self { watchers: BTreeMap::new(), tx, rx, dirty: BTreeMap::new() }
    }

    /// Starts watching share `id` at `path` unless already done.
    pub fn ensure(&mut self, id: &[u8], path: &Path) {
        if self.watchers.contains_key(id) {
            return;
        }
        let tx = self.tx.clone();
        let share = id.to_vec();
        let handler = move |event: notify::Result<notify::Event>| {
            let relevant = match &event {
                Ok(e) => !e.kind.is_access() && !e.paths.iter().all(|p| is_node_file(p)),
                Err(_) => true,
            };
            if relevant {
                let _ = tx.try_send(share.clone());
            }
        };
        match notify::recommended_watcher(handler) {
            Ok(mut watcher) => match watcher.watch(path, RecursiveMode::Recursive) {
                Ok(()) => {
                    debug!("watching {}", path.display());
                    self.watchers.insert(id.to_vec(), watcher);
                }
                Err(e) => warn!("cannot watch {} (the periodic rescan still works): {e}", path.display()),
            },
            Err(e) => warn!("no file-system watcher (the periodic rescan still works): {e}"),
        }
    }

    /// The next share reported changed.
    pub async fn changed(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }

    /// Records an event for `share`.
    pub fn mark_dirty(&mut self, share: Vec<u8>) {
        self.dirty.insert(share, Instant::now());
    }

    /// Whether any share waits to be scanned.
    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Shares quiet for [`DEBOUNCE`], removed from the dirty set.
    pub fn take_settled(&mut self) -> Vec<Vec<u8>> {
        let now = Instant::now();
        let settled: Vec<Vec<u8>> =
            self.dirty.iter().filter(|(_, t)| now.duration_since(**t) >= DEBOUNCE).map(|(id, _)| id.clone()).collect();
        for id in &settled {
            self.dirty.remove(id);
        }
        settled
    }
}

/// The node's own temporary files do not trigger scans.
fn is_node_file(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(crate::share::fs::ignored)
}
