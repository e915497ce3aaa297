//! Write the man pages and shell completions into a directory:
//! `cargo run --example gen_docs -- target/assets` (what
//! packaging/deb/build.sh runs before `cargo deb`).

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: gen_docs DIR");
        std::process::exit(2);
    };
    match ringlogd::docs::write_all(std::path::Path::new(&dir)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
        }
        Err(e) => {
            eprintln!("gen_docs: {e}");
            std::process::exit(1);
        }
    }
}
