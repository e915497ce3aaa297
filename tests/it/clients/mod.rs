//! The programs shipped beside the daemon: logwrite, and the man pages and
//! shell completions generated from the command lines.

mod docs;
mod logwrite;
