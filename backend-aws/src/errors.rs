//! AWS errors as per-handle errors, in one place.
//!
//! A message says what went wrong in our own words, with the HTTP status
//! and the error code; never a response body, never a service's `message`
//! (a hostile endpoint, or a proxy's page, writes whatever it likes there),
//! never an endpoint's URL. So:
//!
//! - an error code is named only when it is one of [`KNOWN_CODES`] (the
//!   code comes from the body too: an unknown one is "an error code this
//!   backend does not know", with the HTTP status);
//! - the service's message is only matched, never shown (a secret marked
//!   for deletion is recognised by it);
//! - transport failures of the SDK's clients are described by [`chain`],
//!   which takes text only from error types whose text we vouch for (the
//!   OS's I/O errors, rustls, our own), describes the others in our words
//!   (reqwest's errors carry the URL), and skips the text of any type it
//!   does not know while still looking at its source. The credentials
//!   chain ([`crate::chain`], [`crate::sts`]) words its own failures, and
//!   maps STS's refusals through [`from_code`] and [`without_code`].
//!
//! Not `Debug` (it holds the raw HTTP response, body included) and not
//! `DisplayErrorContext` either, although the SDK recommends it: it
//! appends the error's `Debug` to the chain (`"... ({:?})"`).

use std::error::Error;

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use backend_core::HandleError;

/// Longest error chain quoted in a message.
const MAX_CHAIN: usize = 300;

/// The error codes a message may name: those of Secrets Manager, SSM
/// Parameter Store and STS for the calls made here, and the errors common
/// to every AWS service. Any other code is not repeated.
pub const KNOWN_CODES: &[&str] = &[
    // Common to every service.
    "AccessDenied",
    "AccessDeniedException",
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
    "InternalFailure",
    "InvalidAction",
    "InvalidClientTokenId",
    "InvalidParameterCombination",
    "InvalidParameterValue",
    "InvalidQueryParameter",
    "InvalidSignatureException",
    "MalformedQueryString",
    "MissingAction",
    "MissingAuthenticationToken",
    "MissingParameter",
    "NotAuthorized",
    "OptInRequired",
    "RequestExpired",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "SignatureDoesNotMatch",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "UnauthorizedOperation",
    "UnknownOperationException",
    "UnrecognizedClientException",
    "ValidationError",
    "ValidationException",
    // Secrets Manager.
    "DecryptionFailure",
    "EncryptionFailure",
    "InternalServiceError",
    "InvalidNextTokenException",
    "InvalidParameterException",
    "InvalidRequestException",
    "LimitExceededException",
    "ResourceNotFoundException",
    // SSM Parameter Store and KMS behind it.
    "InternalServerError",
    "InvalidKeyId",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSInvalidStateException",
    "KMSNotFoundException",
    "ParameterNotFound",
    "ParameterVersionNotFound",
    "RequestLimitExceeded",
    "ThrottledException",
    // STS.
    "IDPCommunicationError",
    "IDPRejectedClaim",
    "InvalidIdentityToken",
    "MalformedPolicyDocument",
    "PackedPolicyTooLarge",
    "RegionDisabledException",
];

/// `code` when it is one of [`KNOWN_CODES`], else words saying it is not.
pub fn shown_code(code: &str) -> &str {
    KNOWN_CODES
        .iter()
        .find(|k| **k == code)
        .copied()
        .unwrap_or("an error code this backend does not know")
}

/// Maps an error `code` (with the service's `message`, only matched, and
/// the HTTP `status` when there was one) to a handle error naming
/// `location`.
pub fn from_code(
    code: &str,
    message: Option<&str>,
    status: Option<u16>,
    location: &str,
) -> HandleError {
    let message = message.unwrap_or_default();
    match code {
        "ResourceNotFoundException" | "ParameterNotFound" | "ParameterVersionNotFound" => {
            if message.contains("marked for delet") {
                deleted(location)
            } else {
                HandleError::not_found(format!("{location}: not found"))
            }
        }
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" => {
            HandleError::permission_denied(format!("{location}: access denied"))
        }
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "InvalidIdentityToken"
        | "IDPRejectedClaim" => HandleError::permission_denied(format!(
            "{location}: AWS refused the credentials ({code})"
        )),
        "DecryptionFailure"
        | "KMSAccessDeniedException"
        | "KMSDisabledException"
        | "KMSInvalidStateException"
        | "KMSNotFoundException"
        | "InvalidKeyId" => HandleError::permission_denied(format!(
            "{location}: KMS could not decrypt the value ({code}); check the key policy \
                 and kms:Decrypt"
        )),
        "InvalidRequestException" if message.contains("delet") => deleted(location),
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "ThrottledException" => HandleError::unavailable(format!(
            "{location}: throttled by AWS ({code}), retries exhausted"
        )),
        "InternalServiceError"
        | "InternalServerError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException" => {
            HandleError::unavailable(format!("{location}: AWS service error ({code})"))
        }
        _ => {
            let code = shown_code(code);
            HandleError::other(match status {
                Some(status) => {
                    format!("{location}: AWS refused the request ({code}, HTTP {status})")
                }
                None => format!("{location}: AWS refused the request ({code})"),
            })
        }
    }
}

fn deleted(location: &str) -> HandleError {
    HandleError::not_found(format!(
        "{location}: the secret is marked for deletion (restore it with RestoreSecret)"
    ))
}

/// Maps any SDK error of an operation.
pub fn from_sdk<E>(e: &SdkError<E, HttpResponse>, location: &str) -> HandleError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            match service.err().code() {
                Some(code) => from_code(code, service.err().message(), Some(status), location),
                None => without_code(status, location),
            }
        }
        // An answer the SDK could not take apart (SSM's reading of a body
        // that is not its JSON, error or not): its status still says
        // something.
        SdkError::ResponseError(response) => {
            without_code(response.raw().status().as_u16(), location)
        }
        SdkError::DispatchFailure(failure) => {
            let why = if failure.is_timeout() {
                "timed out connecting"
            } else if failure.is_io() {
                "cannot connect"
            } else {
                "request failed"
            };
            HandleError::unavailable(format!(
                "{location}: {why} to the AWS endpoint: {}",
                sources(e)
            ))
        }
        SdkError::TimeoutError(_) => {
            HandleError::unavailable(format!("{location}: the AWS request timed out"))
        }
        _ => HandleError::other(format!(
            "{location}: the AWS request could not be made: {}",
            sources(e)
        )),
    }
}

/// [`chain`] of what `e` wraps.
fn sources(e: &(dyn Error + 'static)) -> String {
    e.source().map_or_else(|| "no details".to_owned(), chain)
}

/// An answer without an error code (a proxy, an emulator or a captive
/// portal answering in another format): the code its HTTP status implies,
/// so that a bare 403 still reads as access denied, else the status.
pub(crate) fn without_code(status: u16, location: &str) -> HandleError {
    match implied_code(status) {
        Some(code) => from_code(code, None, Some(status), location),
        None if (200..300).contains(&status) => HandleError::unavailable(format!(
            "{location}: unreadable response from the AWS endpoint (HTTP {status}, not the \
             service's JSON)"
        )),
        None => HandleError::other(format!(
            "{location}: AWS answered HTTP {status} without an error code"
        )),
    }
}

fn implied_code(status: u16) -> Option<&'static str> {
    match status {
        401 | 403 => Some("AccessDeniedException"),
        404 => Some("ResourceNotFoundException"),
        429 => Some("ThrottlingException"),
        500..=599 => Some("InternalServiceError"),
        _ => None,
    }
}

/// The error code of a service error; when the body carried none, the one
/// its HTTP status implies.
pub fn code_of<E>(e: &SdkError<E, HttpResponse>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    let SdkError::ServiceError(s) = e else {
        return None;
    };
    s.err()
        .code()
        .or_else(|| implied_code(s.raw().status().as_u16()))
}

/// What an error and its sources may say, joined with `: `, bounded in
/// length (see the module docs for whose text is taken). `no details` when
/// none of them may say anything.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn Error + 'static)> = Some(e);
    // Chains are short; the bound only guards against a cycle.
    for _ in 0..32 {
        let Some(err) = next else { break };
        let (text, source) = describe(err);
        // Wrappers often repeat their source's message; keep it once.
        if let Some(text) = text
            && !parts.last().is_some_and(|p| p.contains(&text))
        {
            parts.push(text);
        }
        next = source;
    }
    if parts.is_empty() {
        return "no details".into();
    }
    bounded_message(&parts.join(": "))
}

type Source<'a> = Option<&'a (dyn Error + 'static)>;

/// What one error may say of itself, and the error to look at next.
fn describe<'a>(e: &'a (dyn Error + 'static)) -> (Option<String>, Source<'a>) {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        // An `io::Error` wrapping another error shows (and sources) that
        // one's text: look at the wrapped error itself instead.
        return match io.get_ref() {
            Some(inner) => (None, Some(inner)),
            None => (Some(io.to_string()), None),
        };
    }
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return (Some(tls_words(tls)), None);
    }
    if let Some(r) = e.downcast_ref::<reqwest::Error>() {
        return (reqwest_words(r).map(str::to_owned), r.source());
    }
    if let Some(ours) = e.downcast_ref::<crate::http::Said>() {
        return (Some(ours.to_string()), None);
    }
    if let Some(tls) = e.downcast_ref::<crate::http::TlsRefused>() {
        return (Some(tls.to_string()), tls.source());
    }
    // Unknown type: its text might quote what the far end sent; its
    // source may still be one we know.
    (None, e.source())
}

/// A refused handshake in a few words: the kind of refusal, never the
/// names a server's certificate presents.
fn tls_words(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let why = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "UnknownIssuer",
            C::Expired | C::ExpiredContext { .. } => "Expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "NotValidYet",
            C::Revoked => "Revoked",
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "not valid for the endpoint's name"
            }
            C::BadSignature => "BadSignature",
            C::BadEncoding => "BadEncoding",
            _ => "refused by the verifier",
        },
        rustls::Error::AlertReceived(_) => return "the server sent a TLS alert".into(),
        rustls::Error::NoCertificatesPresented => return "no certificate presented".into(),
        // Our own verifier's words (backend-net), naming a roots file.
        rustls::Error::General(m) if m.starts_with("system TLS roots:") => return m.clone(),
        _ => return "TLS error".into(),
    };
    format!("invalid peer certificate: {why}")
}

/// A reqwest error in our words (its own text carries the request's URL);
/// nothing for a failed connection or a timeout, which the message that
/// quotes the chain says already.
fn reqwest_words(e: &reqwest::Error) -> Option<&'static str> {
    Some(if e.is_timeout() || e.is_connect() {
        return None;
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else if e.is_builder() {
        "the request could not be built"
    } else if e.is_request() {
        "sending the request failed"
    } else {
        "the request failed"
    })
}

/// One line, at most [`MAX_CHAIN`] characters.
pub(crate) fn bounded_message(m: &str) -> String {
    let words: Vec<&str> = m
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    let m = words.join(" ");
    let line: String = m.chars().take(MAX_CHAIN).collect();
    if m.chars().count() > MAX_CHAIN {
        format!("{line}...")
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use backend_core::ErrorKind;

    use super::*;

    /// An error of a type `chain` does not know, quoting "the far end".
    #[derive(Debug)]
    struct Remote(Option<std::io::Error>);
    impl std::fmt::Display for Remote {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("REMOTE-TEXT-MARKER")
        }
    }
    impl Error for Remote {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.0.as_ref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn chain_shows_only_text_it_vouches_for() {
        let refused = std::io::Error::from_raw_os_error(111);
        let shown = chain(&Remote(Some(refused)));
        assert!(shown.contains("os error 111"), "{shown}");
        assert!(!shown.contains("MARKER"), "{shown}");
        assert_eq!(chain(&Remote(None)), "no details");
        // An io::Error wrapping a foreign error shows neither.
        let wrapped = std::io::Error::other(Remote(None));
        assert_eq!(chain(&wrapped), "no details");
        let tls = std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        assert_eq!(chain(&tls), "invalid peer certificate: UnknownIssuer");
    }

    #[test]
    fn codes() {
        let k = |code, msg| from_code(code, msg, Some(400), "prod/db").kind();
        assert_eq!(k("ResourceNotFoundException", None), ErrorKind::NotFound);
        assert_eq!(k("ParameterNotFound", None), ErrorKind::NotFound);
        assert_eq!(
            k("AccessDeniedException", None),
            ErrorKind::PermissionDenied
        );
        assert_eq!(k("DecryptionFailure", None), ErrorKind::PermissionDenied);
        assert_eq!(k("ThrottlingException", None), ErrorKind::Unavailable);
        assert_eq!(k("InternalServiceError", None), ErrorKind::Unavailable);
        let e = from_code(
            "InvalidRequestException",
            Some(
                "You can't perform this operation on the secret because it was marked for deletion.",
            ),
            Some(400),
            "prod/db",
        );
        assert!(e.message().contains("marked for deletion"), "{e}");
        assert!(e.message().starts_with("prod/db: "), "{e}");
        assert!(
            from_code("DecryptionFailure", None, None, "p")
                .message()
                .contains("KMS")
        );
    }

    #[test]
    fn service_messages_and_unknown_codes_are_never_repeated() {
        let e = from_code(
            "ValidationException",
            Some("MSG-MARKER: value at 'secretId' failed"),
            Some(400),
            "p",
        );
        assert_eq!(
            e.message(),
            "p: AWS refused the request (ValidationException, HTTP 400)"
        );
        let e = from_code("CODE-MARKER", Some("MSG-MARKER"), Some(418), "p");
        assert_eq!(
            e.message(),
            "p: AWS refused the request (an error code this backend does not know, HTTP 418)"
        );
        let e = from_code("CODE-MARKER", Some("MSG-MARKER"), None, "p");
        assert!(!e.message().contains("MARKER"), "{e}");
    }
}
