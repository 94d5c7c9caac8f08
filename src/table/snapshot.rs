//! The last-known snapshot of a service table: a file holding the raw keys and values of its
//! prefix, so that a process starting while etcd is down starts from what the fleet looked
//! like instead of an empty table (polaris-cpp's disk cache).
//!
//! - **Writing**: after each change the file is written again, at most once per
//!   [`MIN_INTERVAL`] (the last change of a burst is always written), atomically: to
//!   `<path>.tmp.<pid>`, flushed to disk, then renamed over `<path>`. Writes happen on a
//!   blocking thread of the library's runtime, never on a pick's or a callback's path. A
//!   failed write is logged (WARN) and tried again at the next change.
//! - **Reading**: only when the first listing fails for a reason that may pass (etcd down,
//!   unreachable): the table starts from the snapshot, marked stale
//!   ([`crate::table::ServiceTable::is_stale`]), and the watch lists the prefix as soon as
//!   etcd answers; that listing replaces the snapshot's keys (deletes for keys gone, puts for
//!   new or changed ones). A file that is missing, unreadable, not a snapshot, of another
//!   version or of another prefix is reported (WARN, with the reason) and ignored: the
//!   table then fails to start as it would without a snapshot.
//!
//! Format (JSON, one object): `{"etcd_sd_snapshot": 1, "prefix": "/service/",
//! "written_unix_ms": 1764950000000, "keys": [["/service/user/i1", "10.0.0.5:9000"], ...]}`.
//! Keys or values that are not UTF-8 are left out (the table does not take them either).

use crate::error::{Error, Result};
use crate::event::{Event, EventKind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The shortest time between two writes of one snapshot file.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The format version written and accepted.
const VERSION: u64 = 1;

/// Reads a snapshot of `prefix`: its keys and values, in key order.
pub fn load(path: &Path, prefix: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let bad = |why: String| Error::invalid(format!("snapshot {}: {why}", path.display()));
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    match v.get("etcd_sd_snapshot").and_then(|x| x.as_u64()) {
        Some(VERSION) => {}
        Some(other) => return Err(bad(format!("format version {other}, expected {VERSION}"))),
        None => return Err(bad("not an etcd-sd snapshot".into())),
    }
    let of = v.get("prefix").and_then(|p| p.as_str()).unwrap_or_default();
    if of != prefix {
        return Err(bad(format!("it is of prefix {of:?}, not {prefix:?}")));
    }
    let keys = v
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| bad("no \"keys\" array".into()))?;
    let mut rows = BTreeMap::new();
    for (i, pair) in keys.iter().enumerate() {
        let (Some(k), Some(val)) = (
            pair.get(0).and_then(|x| x.as_str()),
            pair.get(1).and_then(|x| x.as_str()),
        ) else {
            return Err(bad(format!(
                "keys[{i}] is not a [key, value] pair of strings"
            )));
        };
        if !k.starts_with(prefix) {
            return Err(bad(format!("key {k:?} is not under {prefix:?}")));
        }
        rows.insert(k.as_bytes().to_vec(), val.as_bytes().to_vec());
    }
    Ok(rows.into_iter().collect())
}

/// Writes `keys` as the snapshot of `prefix`, atomically (temporary file, fsync, rename).
pub fn store(path: &Path, prefix: &str, keys: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<()> {
    let pairs: Vec<[&str; 2]> = keys
        .iter()
        .filter_map(|(k, v)| Some([std::str::from_utf8(k).ok()?, std::str::from_utf8(v).ok()?]))
        .collect();
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let doc = serde_json::json!({
        "etcd_sd_snapshot": VERSION,
        "prefix": prefix,
        "written_unix_ms": ms,
        "keys": pairs,
    });
    let io = |what: &str, p: &Path, e: std::io::Error| {
        Error::invalid(format!("snapshot: {what} {}: {e}", p.display()))
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", &tmp, e))?;
        f.write_all(doc.to_string().as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| io("write", &tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("rename to", path, e)
    })
}

/// Keeps a table's snapshot file up to date from its events.
pub(crate) struct Writer {
    path: PathBuf,
    prefix: String,
    state: Mutex<State>,
    /// Held for a whole write, so that a flush (on drop) waits for a write in progress
    /// instead of returning before the file is renamed into place.
    writing: Mutex<()>,
    /// Wakes the writer task (which holds no strong reference, so a dropped table is not kept).
    wake: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct State {
    keys: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Changed since the last write.
    dirty: bool,
    /// The writer task has stopped (the table is gone).
    closed: bool,
}

impl Writer {
    /// Starts keeping `path` as the snapshot of `prefix` (nothing is written before a change).
    pub(crate) fn start(path: PathBuf, prefix: &str) -> Arc<Writer> {
        let w = Arc::new(Writer {
            path,
            prefix: prefix.to_string(),
            state: Mutex::default(),
            writing: Mutex::new(()),
            wake: Arc::new(tokio::sync::Notify::new()),
        });
        crate::runtime::spawn(run(Arc::downgrade(&w), w.wake.clone()));
        w
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one event of the table's discovery (in revision order); a change schedules a
    /// write.
    pub(crate) fn note(&self, e: &Event) {
        let mut st = self.state();
        let changed = match e.kind {
            EventKind::Put => {
                st.keys.insert(e.key.clone(), e.value.clone()).as_ref() != Some(&e.value)
            }
            EventKind::Delete => st.keys.remove(&e.key).is_some(),
        };
        if !changed {
            return;
        }
        st.dirty = true;
        drop(st);
        self.wake.notify_one();
    }

    /// What the file already holds (a start from it): its keys are not written back.
    pub(crate) fn preload(&self, rows: &[(Vec<u8>, Vec<u8>)]) {
        self.state().keys = rows.iter().cloned().collect();
    }

    /// Writes now if anything changed since the last write; returns once any write in
    /// progress is done too.
    pub(crate) fn flush(&self) {
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let keys = {
            let mut st = self.state();
            if !std::mem::take(&mut st.dirty) {
                return;
            }
            st.keys.clone()
        };
        if let Err(e) = store(&self.path, &self.prefix, &keys) {
            log::warn!(target: "etcd_sd", "service table: {e}; will try again at the next change");
            self.state().dirty = true;
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.state().closed = true;
        self.flush();
        self.wake.notify_one(); // the task sees the writer gone and ends
    }
}

/// Writes after each change, at most once per `MIN_INTERVAL`, until the writer is dropped.
async fn run(w: std::sync::Weak<Writer>, wake: Arc<tokio::sync::Notify>) {
    loop {
        wake.notified().await;
        let Some(me) = w.upgrade() else { return };
        if me.state().closed {
            return;
        }
        let _ = tokio::task::spawn_blocking(move || me.flush()).await;
        tokio::time::sleep(MIN_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = std::env::temp_dir().join(format!("esd-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("table.json");
        let mut keys = BTreeMap::new();
        keys.insert(b"/s/a/1".to_vec(), b"h:1".to_vec());
        keys.insert(b"/s/b/1".to_vec(), b"h:2 zone=x".to_vec());
        keys.insert(b"/s/c/1".to_vec(), b"\xff".to_vec()); // not UTF-8: left out
        store(&p, "/s/", &keys).unwrap();
        let back = load(&p, "/s/").unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1], (b"/s/b/1".to_vec(), b"h:2 zone=x".to_vec()));
        let err = |text: &str, prefix: &str| {
            std::fs::write(&p, text).unwrap();
            load(&p, prefix).unwrap_err().to_string()
        };
        assert!(err("{oops", "/s/").contains("not JSON"));
        assert!(err(r#"{"a":1}"#, "/s/").contains("not an etcd-sd snapshot"));
        assert!(err(r#"{"etcd_sd_snapshot":9}"#, "/s/").contains("version 9"));
        let other = r#"{"etcd_sd_snapshot":1,"prefix":"/t/","keys":[]}"#;
        assert!(err(other, "/s/").contains("of prefix \"/t/\""));
        let bad = r#"{"etcd_sd_snapshot":1,"prefix":"/s/","keys":[["/s/a",1]]}"#;
        assert!(err(bad, "/s/").contains("keys[0]"));
        let outside = r#"{"etcd_sd_snapshot":1,"prefix":"/s/","keys":[["/t/a","h:1"]]}"#;
        assert!(err(outside, "/s/").contains("not under"));
        assert!(load(&dir.join("missing"), "/s/").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
