//! AWS errors as per-handle errors, in one place.
//!
//! An SDK error's `Debug` holds the raw HTTP response, body included, so it
//! is never printed: messages are built from the error code, the service's
//! short message (bounded, and only for codes we do not know), or the
//! `Display` of the error's source chain ([`chain`]) for transport failures.
//!
//! Not `DisplayErrorContext` either, although the SDK recommends it: it
//! appends the error's `Debug` to the chain (`"... ({:?})"`), raw response
//! and body included (seen with an IMDS 403: its body showed up whole).

use std::error::Error;

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use backend_core::HandleError;

/// Longest service message or error chain quoted in an error.
const MAX_SERVICE_MESSAGE: usize = 300;

/// Maps an error `code` (with the service's `message`) to a handle error
/// naming `location`.
pub fn from_code(code: &str, message: Option<&str>, location: &str) -> HandleError {
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
        | "ExpiredToken" => HandleError::permission_denied(format!(
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
        | "ServiceUnavailable" => {
            HandleError::unavailable(format!("{location}: AWS service error ({code})"))
        }
        _ => HandleError::other(format!("{location}: {code}: {}", bounded_message(message))),
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
        SdkError::ServiceError(service) => match code_of(e) {
            Some(code) => from_code(code, service.err().message(), location),
            // A success status with a body that is not the service's JSON
            // (a captive portal, a proxy's page): as unreadable as a
            // response the SDK could not take apart.
            None if service.raw().status().is_success() => HandleError::unavailable(format!(
                "{location}: unreadable response from the AWS endpoint (HTTP {}, not the \
                     service's JSON)",
                service.raw().status().as_u16()
            )),
            None => HandleError::other(format!(
                "{location}: AWS answered HTTP {} without an error code",
                service.raw().status().as_u16()
            )),
        },
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
                chain(e)
            ))
        }
        SdkError::TimeoutError(_) => {
            HandleError::unavailable(format!("{location}: the AWS request timed out"))
        }
        SdkError::ResponseError(_) => HandleError::unavailable(format!(
            "{location}: unreadable response from the AWS endpoint"
        )),
        _ => HandleError::other(format!("{location}: {}", chain(e))),
    }
}

/// The error code of a service error; when the body carried none (a proxy
/// or an emulator answering in another format), one implied by the HTTP
/// status, so that a bare 403 still reads as access denied.
pub fn code_of<E>(e: &SdkError<E, HttpResponse>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    let SdkError::ServiceError(s) = e else {
        return None;
    };
    s.err().code().or(match s.raw().status().as_u16() {
        401 | 403 => Some("AccessDeniedException"),
        404 => Some("ResourceNotFoundException"),
        429 => Some("ThrottlingException"),
        500..=599 => Some("InternalServiceError"),
        _ => None,
    })
}

/// The `Display` of an error and of each of its sources, joined with `: `
/// (never `Debug`, which would show raw responses), bounded in length.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        // Wrappers often repeat their source's message; keep it once.
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    bounded_message(&parts.join(": "))
}

/// One line, at most [`MAX_SERVICE_MESSAGE`] characters.
fn bounded_message(m: &str) -> String {
    let words: Vec<&str> = m
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    let m = words.join(" ");
    let line: String = m.chars().take(MAX_SERVICE_MESSAGE).collect();
    if m.chars().count() > MAX_SERVICE_MESSAGE {
        format!("{line}...")
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use backend_core::ErrorKind;

    use super::*;

    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("dispatch failure")
        }
    }
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("connection refused")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }
    impl Error for Inner {}

    #[test]
    fn chain_shows_sources_never_debug() {
        assert_eq!(chain(&Outer(Inner)), "dispatch failure: connection refused");
    }

    #[test]
    fn codes() {
        let k = |code, msg| from_code(code, msg, "prod/db").kind();
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
            "prod/db",
        );
        assert!(e.message().contains("marked for deletion"), "{e}");
        assert!(e.message().starts_with("prod/db: "), "{e}");
        let e = from_code("Weird", Some(&"x\n".repeat(500)), "p");
        assert!(
            e.message().len() < 400 && !e.message().contains('\n'),
            "{e}"
        );
        assert!(
            from_code("DecryptionFailure", None, "p")
                .message()
                .contains("KMS")
        );
    }
}
