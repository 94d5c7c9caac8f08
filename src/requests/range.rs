//! Range requests: reading every key under a prefix (or in a range) at one revision: the discovery's initial listing, the
//! watch's relisting after a compaction, and the general client's `range`.

use crate::error::{Error, Result};
use crate::transport::{retry, Shared};
use crate::types::KeyValue;
use etcd_client::GetOptions;
use std::sync::Arc;
use std::time::Duration;

/// Keys in the first page of a listing: most prefixes fit in it (one request).
pub(crate) const PAGE: i64 = 5_000;
/// Later pages are as large as fits this many reply bytes, judged from the first page's keys
/// and values: etcd (3.4) walks its index over the whole rest of the range for every page,
/// so a 100,000-key prefix costs it 246 ms in one response and 482 ms in pages of 10,000.
/// Half of `MAX_REPLY`, so that a page of keys larger than the first page's still fits.
const LATER_PAGE_BYTES: usize = MAX_REPLY / 2;
/// Bounds on a later page, in keys: at least what the first page was, at most what keeps the
/// decoded page (about 100 bytes a key beyond its key and value) within tens of MB.
const LATER_PAGE_MIN: i64 = PAGE;
const LATER_PAGE_MAX: i64 = 250_000;
/// Bytes a key-value costs in a reply beyond its key and value (revisions, version, lease,
/// protobuf tags and lengths).
const KV_OVERHEAD: usize = 32;
/// Reply size the listing and the watch accept (etcd-client's default is 4 MiB), for pages
/// of large values and for catch-up batches of events.
pub(crate) const MAX_REPLY: usize = 64 << 20;

/// Every key under `prefix` (at most `limit` keys when `limit > 0`), in key order, read page
/// by page at one revision (`at`, or the first page's revision when `at` is 0), with that
/// revision.
pub(crate) async fn list(
    client: etcd_client::Client,
    prefix: &[u8],
    limit: i64,
    at: i64,
) -> Result<(Vec<KeyValue>, i64)> {
    list_range(client, prefix, prefix_end(prefix), limit, at).await
}

/// One page of a listing being streamed ([`pages`]).
pub(crate) struct Page {
    pub(crate) kvs: Vec<KeyValue>,
    /// The revision every page of the listing is read at.
    pub(crate) revision: i64,
}

/// Streams the listing of `prefix` page by page at one revision: the pages are fetched and
/// decoded on the I/O thread while the caller consumes the previous one (a discovery's
/// initial `on_put` calls and its table), so a large prefix costs about the time etcd takes to
/// serve it rather than that plus the callbacks. The first page gets `first_limit` (retried
/// across members), later pages `RELIST_PAGE_LIMIT` each. Ends after the last page, or after
/// an error.
pub(crate) fn pages(
    conn: Arc<Shared>,
    prefix: Vec<u8>,
    first_limit: Duration,
) -> tokio::sync::mpsc::Receiver<Result<Page>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    crate::runtime::spawn(async move {
        let end = prefix_end(&prefix);
        let mut start = prefix.clone();
        let mut revision = 0;
        let mut later = LATER_PAGE_MIN;
        let mut limit = first_limit;
        loop {
            let (from, at) = (&start, revision);
            let end = &end;
            let got = retry(&conn, limit, "listing", |c| async move {
                let mut kv = c.kv_client().max_decoding_message_size(MAX_REPLY);
                let opts = page_options(end, at, later);
                kv.get(from.clone(), Some(opts))
                    .await
                    .map_err(|e| Error::from_etcd("get", e))
            })
            .await;
            let resp = match got {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let first = revision == 0;
            let (kvs, more) = advance(resp, &mut start, &mut revision);
            if first {
                later = later_page(&kvs);
            }
            if tx.send(Ok(Page { kvs, revision })).await.is_err() || !more {
                return;
            }
            limit = RELIST_PAGE_LIMIT;
        }
    });
    rx
}

/// The first page: linearizable (it fixes the revision). Later pages (`later` keys each) read
/// at that revision, which makes them consistent without the leader round trip a
/// linearizable read costs etcd (serializable), and bigger.
fn page_options(end: &[u8], at: i64, later: i64) -> GetOptions {
    let opts = GetOptions::new().with_range(end.to_vec());
    if at == 0 {
        opts.with_limit(PAGE)
    } else {
        opts.with_limit(later).with_revision(at).with_serializable()
    }
}

/// Keys per later page, from the sizes of the first page's keys and values.
fn later_page(first: &[KeyValue]) -> i64 {
    let bytes: usize = first
        .iter()
        .map(|kv| kv.key.len() + kv.value.len() + KV_OVERHEAD)
        .sum();
    let per_key = (bytes / first.len().max(1)).max(KV_OVERHEAD);
    ((LATER_PAGE_BYTES / per_key) as i64).clamp(LATER_PAGE_MIN, LATER_PAGE_MAX)
}

/// Takes a page's keys and whether more follow; moves `start` past the last key and sets
/// `revision` from the first page's header.
fn advance(
    mut resp: etcd_client::GetResponse,
    start: &mut Vec<u8>,
    revision: &mut i64,
) -> (Vec<KeyValue>, bool) {
    if *revision == 0 {
        *revision = resp.header().map(|h| h.revision()).unwrap_or(0);
    }
    let more = resp.more();
    let kvs = resp.take_kvs();
    if let Some(last) = kvs.last() {
        *start = last.key().to_vec();
        start.push(0); // the next key after `last`
    }
    (kvs.into_iter().map(KeyValue::from).collect(), more)
}

/// How long each later page of a streamed listing may take (retrying across members).
const RELIST_PAGE_LIMIT: Duration = Duration::from_secs(10);

/// Every key in `[from, end)`, as [`list`] does.
pub(crate) async fn list_range(
    client: etcd_client::Client,
    from: &[u8],
    end: Vec<u8>,
    limit: i64,
    at: i64,
) -> Result<(Vec<KeyValue>, i64)> {
    let mut kv = client.kv_client().max_decoding_message_size(MAX_REPLY);
    let mut out = Vec::new();
    let mut start = from.to_vec();
    let mut revision = at;
    let mut later = LATER_PAGE_MIN;
    loop {
        let mut opts = page_options(&end, revision, later);
        if limit > 0 {
            let page = if revision == 0 { PAGE } else { later };
            opts = opts.with_limit((limit - out.len() as i64).min(page));
        }
        let resp = kv
            .get(start.clone(), Some(opts))
            .await
            .map_err(|e| Error::from_etcd("get", e))?;
        let (kvs, more) = advance(resp, &mut start, &mut revision);
        if out.is_empty() {
            later = later_page(&kvs);
        }
        out.extend(kvs);
        if !more || (limit > 0 && out.len() as i64 >= limit) {
            return Ok((out, revision));
        }
    }
}

/// The end of the key range holding every key that starts with `prefix` (etcd's rule: the
/// prefix with its last byte below 0xff incremented; "\0" means "to the end").
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_pages_fit_half_the_reply_limit() {
        let kv = |k: usize, v: usize| KeyValue {
            key: vec![b'k'; k],
            value: vec![b'v'; v],
            ..Default::default()
        };
        // Service-table sized entries: the rest of a 100,000-key prefix in one request.
        let small = vec![kv(30, 15); 100];
        assert_eq!(later_page(&small), LATER_PAGE_MAX);
        // 1 kB values: about 32 MiB per page.
        let big = later_page(&[kv(40, 1000)]);
        assert!(big > 30_000 && big < 33_000, "{big}");
        // Huge values: never below the first page's size.
        assert_eq!(later_page(&[kv(10, 1 << 20)]), LATER_PAGE_MIN);
        assert_eq!(later_page(&[]), LATER_PAGE_MAX);
    }

    #[test]
    fn prefix_end_follows_etcd() {
        assert_eq!(prefix_end(b"/svc"), b"/svd");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
    }
}
