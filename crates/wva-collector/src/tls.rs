//! TLS client configuration for Prometheus and pod scraping (spec §6.3).
//!
//! rustls with the `ring` provider (never `ClientConfig::builder()`, which panics when two
//! providers are compiled in), TLS 1.3 and 1.2 only. `server_name` overrides the name the
//! certificate is verified against; SNI still carries the URL host (a deliberate difference from
//! the Go reference). Skip-verify accepts any certificate but still checks handshake signatures.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::CollectorError;

/// TLS options shared by the Prometheus client and the scrape client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Accept any server certificate (handshake signatures are still checked).
    pub insecure_skip_verify: bool,
    /// PEM bundle of trusted roots; the system store when `None`. Never read under skip-verify.
    pub ca_cert_path: Option<PathBuf>,
    /// Client certificate (PEM), set together with `client_key_path`.
    pub client_cert_path: Option<PathBuf>,
    /// Client private key (PEM).
    pub client_key_path: Option<PathBuf>,
    /// Name the server certificate is verified against instead of the URL host.
    pub server_name: Option<String>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Validates a `PROMETHEUS_SERVER_NAME` value (DNS name or IP address).
pub(crate) fn parse_server_name(v: &str) -> Result<ServerName<'static>, CollectorError> {
    ServerName::try_from(v.to_string()).map_err(|_| {
        CollectorError::config(
            "PROMETHEUS_SERVER_NAME",
            format!("PROMETHEUS_SERVER_NAME=\"{v}\" is not a valid DNS name or IP address"),
        )
    })
}

fn load_roots(opts: &TlsOptions) -> Result<RootCertStore, CollectorError> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = &opts.ca_cert_path {
        let p = path.display();
        let key = "PROMETHEUS_CA_CERT_PATH";
        let bytes = std::fs::read(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CollectorError::config(key, format!("CA certificate file not found: {p}"))
            } else {
                CollectorError::config(key, format!("failed to read CA certificate from {p}: {e}"))
            }
        })?;
        let parse_err =
            || CollectorError::config(key, format!("failed to parse CA certificate from {p}"));
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|_| parse_err())?;
        if certs.is_empty() {
            return Err(parse_err());
        }
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(parse_err());
        }
    } else {
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            return Err(CollectorError::config(
                "PROMETHEUS_CA_CERT_PATH",
                "no trusted root certificates found on this system; set PROMETHEUS_CA_CERT_PATH or PROMETHEUS_TLS_INSECURE_SKIP_VERIFY=true",
            ));
        }
    }
    Ok(roots)
}

fn load_client_auth(
    opts: &TlsOptions,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, CollectorError> {
    let (cert, key) = match (&opts.client_cert_path, &opts.client_key_path) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(CollectorError::config(
                "PROMETHEUS_CLIENT_CERT_PATH",
                "PROMETHEUS_CLIENT_CERT_PATH and PROMETHEUS_CLIENT_KEY_PATH must be set together; only PROMETHEUS_CLIENT_CERT_PATH is set",
            ));
        }
        (None, Some(_)) => {
            return Err(CollectorError::config(
                "PROMETHEUS_CLIENT_KEY_PATH",
                "PROMETHEUS_CLIENT_CERT_PATH and PROMETHEUS_CLIENT_KEY_PATH must be set together; only PROMETHEUS_CLIENT_KEY_PATH is set",
            ));
        }
        (Some(c), Some(k)) => (c, k),
    };
    if !cert.exists() {
        return Err(CollectorError::config(
            "PROMETHEUS_CLIENT_CERT_PATH",
            format!("client certificate file not found: {}", cert.display()),
        ));
    }
    if !key.exists() {
        return Err(CollectorError::config(
            "PROMETHEUS_CLIENT_KEY_PATH",
            format!("client key file not found: {}", key.display()),
        ));
    }
    let fail = |e: String| {
        CollectorError::config(
            "PROMETHEUS_CLIENT_CERT_PATH",
            format!(
                "failed to load client certificate from {} and key from {}: {e}",
                cert.display(),
                key.display()
            ),
        )
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no certificate in file".to_string()));
    }
    let pk = PrivateKeyDer::from_pem_file(key).map_err(|e| fail(e.to_string()))?;
    Ok(Some((certs, pk)))
}

/// Verifies against a configured name instead of the one reqwest passes (the URL host).
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts any certificate; still checks that the handshake was signed by its key.
#[derive(Debug)]
struct SkipVerify {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Builds the rustls client configuration (ring provider, TLS 1.3 + 1.2).
pub(crate) fn build_client_config(opts: &TlsOptions) -> Result<ClientConfig, CollectorError> {
    let provider = provider();
    let tls_err = |e: rustls::Error| CollectorError::Tls {
        cause: e.to_string(),
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(tls_err)?;
    let verifier: Arc<dyn ServerCertVerifier> = if opts.insecure_skip_verify {
        Arc::new(SkipVerify {
            algs: provider.signature_verification_algorithms,
        })
    } else {
        let roots = Arc::new(load_roots(opts)?);
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| CollectorError::Tls {
                cause: e.to_string(),
            })?;
        match &opts.server_name {
            Some(name) => Arc::new(NamedVerifier {
                inner,
                name: parse_server_name(name)?,
            }),
            None => inner,
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match load_client_auth(opts)? {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key).map_err(|e| {
            CollectorError::config(
                "PROMETHEUS_CLIENT_CERT_PATH",
                format!(
                    "failed to load client certificate from {} and key from {}: {e}",
                    opts.client_cert_path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    opts.client_key_path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
            )
        })?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Builds a reqwest client with our TLS config, no proxy, gzip, 5 s connect timeout and 90 s
/// idle pooled connections. `https_needed` = false skips loading roots for plain-HTTP use.
pub(crate) fn build_http_client(
    opts: &TlsOptions,
    https_needed: bool,
) -> Result<reqwest::Client, CollectorError> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .gzip(true)
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(90));
    if https_needed {
        builder = builder.tls_backend_preconfigured(build_client_config(opts)?);
    } else {
        let plain = TlsOptions {
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        builder = builder.tls_backend_preconfigured(build_client_config(&plain)?);
    }
    builder.build().map_err(|e| CollectorError::Internal {
        what: format!("cannot build the HTTP client: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_cert_without_key_names_the_missing_key() {
        let opts = TlsOptions {
            insecure_skip_verify: true,
            client_cert_path: Some("/nonexistent/cert.pem".into()),
            ..TlsOptions::default()
        };
        let err = build_client_config(&opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PROMETHEUS_CLIENT_CERT_PATH and PROMETHEUS_CLIENT_KEY_PATH must be set together; only PROMETHEUS_CLIENT_CERT_PATH is set"
        );
    }

    #[test]
    fn missing_ca_file_is_reported_verbatim() {
        let opts = TlsOptions {
            ca_cert_path: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        };
        let err = build_client_config(&opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CA certificate file not found: /nonexistent/ca.pem"
        );
    }

    #[test]
    fn garbage_ca_file_fails_to_parse() {
        let dir = std::env::temp_dir().join(format!("wva-ca-{}", std::process::id()));
        std::fs::write(&dir, "not a pem").unwrap();
        let opts = TlsOptions {
            ca_cert_path: Some(dir.clone()),
            ..TlsOptions::default()
        };
        let err = build_client_config(&opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("failed to parse CA certificate from {}", dir.display())
        );
        let _ = std::fs::remove_file(dir);
    }

    #[test]
    fn skip_verify_builds_without_reading_roots() {
        let opts = TlsOptions {
            insecure_skip_verify: true,
            ca_cert_path: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        };
        assert!(build_client_config(&opts).is_ok());
    }
}
