//! The client side of `tls://` routes, with rustls: the CAs that may sign
//! the server's certificate (a PEM file, or the system's bundle), an
//! optional client certificate and key, and the name the server's
//! certificate must carry. Everything is read at start, so a missing or
//! bad file is a start-up error naming the file.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use super::spec::RouteSpec;

/// Where distributions keep their CA bundle, first found wins.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// What a TLS route needs to open connections.
#[derive(Clone)]
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
    pub name: ServerName<'static>,
}

impl TlsClient {
    pub fn new(spec: &RouteSpec) -> Result<TlsClient, String> {
        let fail = |why: String| format!("route {}: {why}", spec.address());
        let mut roots = RootCertStore::empty();
        let ca = match &spec.tls.ca {
            Some(p) => p.clone(),
            None => SYSTEM_BUNDLES
                .iter()
                .map(Path::new)
                .find(|p| p.is_file())
                .ok_or_else(|| fail("no ca= given and no system CA bundle found".into()))?
                .to_path_buf(),
        };
        let mut added = 0;
        for cert in read_certs(&ca).map_err(fail)? {
            // A system bundle may hold a certificate webpki cannot use;
            // one bad entry must not make the others unusable.
            if roots.add(cert).is_ok() {
                added += 1;
            }
        }
        if added == 0 {
            return Err(fail(format!("{}: no usable CA certificate", ca.display())));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(format!("TLS set-up: {e}")))?
            .with_root_certificates(roots);
        let config = match (&spec.tls.cert, &spec.tls.key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert).map_err(fail)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| fail(format!("{}: no private key: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| fail(format!("client certificate and key: {e}")))?
            }
            _ => builder.with_no_client_auth(),
        };
        let name = spec.tls.name.clone().unwrap_or_else(|| spec.host.clone());
        let name = ServerName::try_from(name.clone())
            .map_err(|_| fail(format!("{name:?} is not a server name (name=)")))?;
        Ok(TlsClient {
            config: Arc::new(config),
            name,
        })
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_named() {
        let spec = RouteSpec::parse("tls://127.0.0.1:6514?ca=/nonexistent/ca.pem").unwrap();
        let err = TlsClient::new(&spec).err().unwrap();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem\n").unwrap();
        let spec = RouteSpec::parse(&format!("tls://h:1?ca={}", empty.display())).unwrap();
        let err = TlsClient::new(&spec).err().unwrap();
        assert!(err.contains("no certificate"), "{err}");
    }
}
