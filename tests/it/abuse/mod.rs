//! Local users and hostile input: who may read and write what, attacks
//! through credentials, files and formats, and input built to break the
//! daemon or exhaust its fds.

mod attack_creds;
mod attack_files;
mod attack_format;
mod attack_intake;
mod attack_query;
mod robust;
mod robust_intake;
mod robust_limits;
mod security;
