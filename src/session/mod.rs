//! Layer 3, session state: what the library keeps per connection above the transport -- the
//! kept leases ([`kept`]) renewed by one keep-alive stream ([`keeper`]) and found by id
//! ([`book`]), the resumable watch engine ([`watch`]) and the list-then-watch cache
//! ([`listings`]), held together per connection by a [`Session`] ([`state`]).

pub(crate) mod book;
pub(crate) mod keeper;
pub(crate) mod kept;
pub(crate) mod listings;
pub(crate) mod mux;
pub(crate) mod state;
pub(crate) mod watch;

pub(crate) use state::{process_stats, session, Session};
