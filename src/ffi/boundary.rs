//! The panic boundary. `ffi_boundary! { body }` runs `body` in `catch_unwind`; what the C
//! caller gets back is chosen by the body's type through [`Boundary`]: a `Result` becomes an
//! `etcd_sd_result` (a panic becomes `ETCD_SD_INTERNAL`), `()` stays `()`, a borrowed pointer
//! (a C string, a view into a response) becomes NULL on panic.

use crate::error::Error;
use crate::ffi::result::{etcd_sd_result, fail};
use std::any::Any;

/// Runs the body of an exported function so that no panic unwinds into C.
#[macro_export]
#[doc(hidden)]
macro_rules! ffi_boundary {
    ($($body:tt)*) => {{
        let r = ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* }));
        $crate::ffi::boundary::finish(r)
    }};
}

/// How a body's value, or a panic, turns into what the C function returns.
pub trait Boundary {
    type Out;
    fn finish(self) -> Self::Out;
    fn on_panic(err: Error) -> Self::Out;
}

impl Boundary for Result<(), Error> {
    type Out = etcd_sd_result;
    fn finish(self) -> etcd_sd_result {
        match self {
            Ok(()) => etcd_sd_result::ETCD_SD_OK,
            Err(e) => fail(&e),
        }
    }
    fn on_panic(err: Error) -> etcd_sd_result {
        fail(&err)
    }
}

impl Boundary for () {
    type Out = ();
    fn finish(self) {}
    fn on_panic(err: Error) {
        fail(&err);
    }
}

/// Borrowed pointers (C strings, views into a response): NULL on panic.
impl<T> Boundary for *const T {
    type Out = *const T;
    fn finish(self) -> *const T {
        self
    }
    fn on_panic(err: Error) -> *const T {
        fail(&err);
        std::ptr::null()
    }
}

/// Plain values (counts, ids, flags): the zero value on panic.
macro_rules! plain_boundary {
    ($($t:ty),*) => {$(
        impl Boundary for $t {
            type Out = $t;
            fn finish(self) -> $t {
                self
            }
            fn on_panic(err: Error) -> $t {
                fail(&err);
                <$t>::default()
            }
        }
    )*};
}
plain_boundary!(bool, i32, i64, u64, usize);

pub fn finish<B: Boundary>(r: std::thread::Result<B>) -> B::Out {
    match r {
        Ok(v) => v.finish(),
        Err(payload) => {
            let err = Error::Internal(format!("panic: {}", panic_message(&*payload)));
            log::error!(target: "etcd_sd", "{err}");
            B::on_panic(err)
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}
