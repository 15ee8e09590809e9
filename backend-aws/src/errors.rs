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
//! - transport failures are backend-net's [`Failure`], which names the
//!   innermost cause (the OS's I/O error, the TLS refusal) and never a
//!   URL or a body, put in our words by [`from_api`]. The credentials
//!   chain ([`crate::chain`], [`crate::sts`]) words its own failures, and
//!   maps STS's refusals through [`from_code`] and [`without_code`].

use backend_core::HandleError;
use backend_net::http::Failure;

use crate::api::ApiError;

/// Longest reason quoted in a message.
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

/// Maps the failure of a call to Secrets Manager or SSM ([`crate::api`]).
pub fn from_api(e: &ApiError, location: &str) -> HandleError {
    match e {
        ApiError::Refused {
            status,
            code: Some(code),
            message,
        } => from_code(code, message.as_deref(), Some(*status), location),
        ApiError::Refused {
            status, code: None, ..
        }
        | ApiError::Unreadable { status } => without_code(*status, location),
        ApiError::Transport(Failure::TooLarge) => HandleError::unavailable(format!(
            "{location}: the AWS answer is larger than {} MiB",
            backend_net::http::MAX_BODY >> 20
        )),
        ApiError::Transport(f) => {
            // The transport names the kind first ("cannot connect: ...").
            let cause = f.cause();
            let (kind, detail) = match cause.split_once(": ") {
                Some((kind, detail)) => (kind, Some(detail)),
                None => (cause.as_str(), None),
            };
            let said = match kind {
                "cannot connect" => "cannot connect to the AWS endpoint",
                "timed out" => "timed out connecting to the AWS endpoint",
                _ => "the request to the AWS endpoint failed",
            };
            let detail = match (kind, detail) {
                ("cannot connect" | "timed out" | "request failed", d) => d,
                _ => Some(cause.as_str()),
            };
            HandleError::unavailable(match detail {
                Some(d) => format!("{location}: {said}: {d}"),
                None => format!("{location}: {said}"),
            })
        }
        ApiError::Request(why) => HandleError::other(format!("{location}: {why}")),
    }
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

pub(crate) fn implied_code(status: u16) -> Option<&'static str> {
    match status {
        401 | 403 => Some("AccessDeniedException"),
        404 => Some("ResourceNotFoundException"),
        429 => Some("ThrottlingException"),
        500..=599 => Some("InternalServiceError"),
        _ => None,
    }
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

    #[test]
    fn transport_failures_in_our_words() {
        let e = |f| from_api(&ApiError::Transport(f), "p").to_string();
        assert_eq!(
            e(Failure::Unreachable(
                "cannot connect: Connection refused (os error 111)".into()
            )),
            "p: cannot connect to the AWS endpoint: Connection refused (os error 111)"
        );
        assert_eq!(
            e(Failure::Unreachable("timed out".into())),
            "p: timed out connecting to the AWS endpoint"
        );
        assert_eq!(
            e(Failure::Permanent(
                "request failed: invalid peer certificate: UnknownIssuer".into()
            )),
            "p: the request to the AWS endpoint failed: invalid peer certificate: UnknownIssuer"
        );
        assert!(e(Failure::TooLarge).contains("larger than"));
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
