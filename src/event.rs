//! What a discovery reports, and the trait through which it reports it.

/// What a discovery reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change seen under a prefix. For `Delete`, `value` is the value that was deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl Event {
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Event {
            kind: EventKind::Put,
            key: key.into(),
            value: value.into(),
        }
    }

    pub fn delete(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Event {
            kind: EventKind::Delete,
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Receives a discovery's events. Implemented for closures; the C layer implements it over
/// its function pointers.
pub trait EventSink: Send + Sync + 'static {
    fn on_event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync + 'static> EventSink for F {
    fn on_event(&self, event: &Event) {
        self(event)
    }
}
