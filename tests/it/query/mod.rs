//! How the ring is read: the memlogd query socket and logread, the
//! filters, formats and HTTP beyond memlogd's, and readers that misbehave.

mod captures;
mod eviction_notes;
mod filters;
mod formatted;
mod logread;
mod memlogd;
mod robust_query;
