//! TLS of the metrics listener (spec/exposition.md §8): PEM files polled for rotation, or an
//! in-memory self-signed certificate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::error::ExpositionError;

/// TLS settings of the metrics listener.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Directory of the certificate and key (`--metrics-cert-path`); `None` generates a
    /// self-signed certificate in memory.
    pub cert_dir: Option<PathBuf>,
    /// Certificate file name in `cert_dir` (`--metrics-cert-name`, default `tls.crt`).
    pub cert_name: String,
    /// Key file name in `cert_dir` (`--metrics-cert-key`, default `tls.key`).
    pub key_name: String,
    /// Subject names of the self-signed certificate (`localhost` and `POD_NAME`).
    pub self_signed_names: Vec<String>,
    /// How often the files are checked for rotation (10 s).
    pub reload_interval: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_dir: None,
            cert_name: "tls.crt".to_owned(),
            key_name: "tls.key".to_owned(),
            self_signed_names: vec!["localhost".to_owned()],
            reload_interval: Duration::from_secs(10),
        }
    }
}

/// Modification times and sizes of the certificate and key files.
type Stamp = [(Option<SystemTime>, u64); 2];

/// The ring provider, used explicitly so that no process-wide default is needed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Stamps of `paths`, `None` if a file cannot be inspected.
fn stamp(cert: &Path, key: &Path) -> Option<Stamp> {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    Some([one(cert)?, one(key)?])
}

/// Parses a PEM certificate chain and private key into a signing pair.
fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    CertifiedKey::from_der(chain, key_der, &provider()).map_err(|e| e.to_string())
}

/// Days since 1970-01-01 to a (year, month, day) civil date in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        i32::try_from(year).unwrap_or(1970),
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

/// A certificate for `names`, valid from today for one year, signed by its own fresh key.
fn self_signed(names: &[String]) -> Result<CertifiedKey, String> {
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| e.to_string())?;
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs() / 86_400).unwrap_or(0))
        .unwrap_or(0);
    let (year, month, day) = civil_from_days(days);
    params.not_before = rcgen::date_time_ymd(year, month, day);
    params.not_after = rcgen::date_time_ymd(year + 1, month, day.min(28));
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let key_der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    CertifiedKey::from_der(vec![cert.der().clone()], key_der, &provider())
        .map_err(|e| e.to_string())
}

/// Serves the current certificate; swapped atomically on rotation.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// A TLS acceptor plus the rotation state of its files.
#[derive(Clone)]
pub(crate) struct MetricsTls {
    acceptor: TlsAcceptor,
    resolver: Arc<Resolver>,
    files: Option<(PathBuf, PathBuf)>,
    interval: Duration,
}

impl std::fmt::Debug for MetricsTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl MetricsTls {
    /// Loads the certificate (or generates one) and builds the acceptor; HTTP/2 is offered
    /// through ALPN when `http2`.
    pub(crate) fn new(config: &TlsConfig, http2: bool) -> Result<Self, ExpositionError> {
        let (pair, files) = match &config.cert_dir {
            Some(dir) => {
                let cert = dir.join(&config.cert_name);
                let key = dir.join(&config.key_name);
                let pair =
                    load_pair(&cert, &key).map_err(|message| ExpositionError::TlsCertificate {
                        path: dir.display().to_string(),
                        message,
                    })?;
                (pair, Some((cert, key)))
            }
            None => {
                let pair = self_signed(&config.self_signed_names).map_err(|message| {
                    ExpositionError::TlsCertificate {
                        path: "(self-signed)".to_owned(),
                        message,
                    }
                })?;
                tracing::warn!(
                    names = ?config.self_signed_names,
                    "no --metrics-cert-path: serving metrics with an in-memory self-signed certificate valid for one year"
                );
                (pair, None)
            }
        };
        let resolver = Arc::new(Resolver {
            current: RwLock::new(Arc::new(pair)),
        });
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| ExpositionError::TlsCertificate {
                path: "(protocol versions)".to_owned(),
                message: e.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>);
        server.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(MetricsTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            resolver,
            files,
            interval: config.reload_interval,
        })
    }

    /// The acceptor for new connections.
    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Polls the files and swaps in a changed pair until `shutdown`; nothing to do when self-signed.
    pub(crate) fn spawn_reloader(&self, shutdown: CancellationToken) -> Option<JoinHandle<()>> {
        let (cert, key) = self.files.clone()?;
        let resolver = Arc::clone(&self.resolver);
        let interval = self.interval;
        Some(tokio::spawn(async move {
            let mut last = stamp(&cert, &key);
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                let now = stamp(&cert, &key);
                if now.is_none() || now == last {
                    continue;
                }
                last = now;
                match load_pair(&cert, &key) {
                    Ok(pair) => {
                        *resolver
                            .current
                            .write()
                            .unwrap_or_else(PoisonError::into_inner) = Arc::new(pair);
                        tracing::info!(path = %cert.display(), "reloaded metrics TLS certificate");
                    }
                    Err(error) => tracing::error!(
                        "failed to reload metrics TLS certificate from {}: {error}",
                        cert.display()
                    ),
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_from_unix_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }

    #[test]
    fn self_signed_certificate_builds_an_acceptor() {
        let config = TlsConfig::default();
        assert!(MetricsTls::new(&config, false).is_ok());
    }

    #[test]
    fn missing_files_fail_with_the_directory_named() {
        let config = TlsConfig {
            cert_dir: Some(PathBuf::from("/nonexistent/certs")),
            ..TlsConfig::default()
        };
        let err = MetricsTls::new(&config, false).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot load metrics TLS certificate from /nonexistent/certs: "),
            "{err}"
        );
    }
}
