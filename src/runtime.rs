//! The one tokio runtime of the process: created on first use, never dropped, one I/O thread
//! named `etcd-sd-io`. Every connection, keep-alive and watch runs on it; user code does not
//! (callbacks run on the `dispatch` pool), so a slow callback cannot starve a keep-alive. The
//! exception is opted into: inline callbacks (`Options::set_inline_callbacks`) run here and
//! must not block.

use crate::error::{Error, Result};
use once_cell::sync::Lazy;
use std::future::Future;
use tokio::runtime::{Builder, Runtime};

/// Worker threads of the runtime. One is plenty for loopback or LAN etcd traffic and keeps the
/// library's footprint fixed; the number never grows with the number of objects.
pub const IO_THREADS: usize = 1;
/// The I/O thread's name (and that of the blocking pool's one thread).
pub const IO_THREAD_NAME: &str = "etcd-sd-io";

static RUNTIME: Lazy<Runtime> = Lazy::new(|| {
    crate::log::init();
    Builder::new_multi_thread()
        .worker_threads(IO_THREADS)
        // Only name resolution of non-IP hosts uses the blocking pool; keep it to one thread.
        .max_blocking_threads(1)
        .thread_name(IO_THREAD_NAME)
        .on_thread_start(block_sigpipe)
        .enable_all()
        .build()
        .expect("etcd-sd: cannot start the tokio runtime")
});

/// A write to a connection etcd has closed raises SIGPIPE, whose default action kills the
/// process; C programs rarely ignore it (Rust programs do). Blocking it on the threads that
/// do the I/O turns it into an EPIPE error that the connection handles.
fn block_sigpipe() {
    // SAFETY: plain libc calls on a local, zero-initialised signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// `Ok` when the calling thread may block: refuses, instead of panicking, when called from
/// inside an async runtime (ours or the program's), where blocking would stall the very
/// threads that must make progress.
pub(crate) fn may_block() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        let on_ours = std::thread::current().name() == Some(IO_THREAD_NAME);
        return Err(Error::Internal(if on_ours {
            "a blocking etcd-sd call was made from an inline callback (on the library's I/O \
             thread, which it would stall); inline callbacks must not block: hand the work to \
             another thread"
                .into()
        } else {
            "a blocking etcd-sd call was made from inside an async runtime; call it from a plain thread"
                .into()
        }));
    }
    Ok(())
}

/// Runs `fut` to completion from a caller's (non-runtime) thread (see [`may_block`]).
pub(crate) fn block_on<F: Future>(fut: F) -> Result<F::Output> {
    may_block()?;
    Ok(RUNTIME.block_on(fut))
}

/// Spawns a background task on the runtime (keep-alive loops, watch loops).
pub(crate) fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    RUNTIME.spawn(fut)
}
