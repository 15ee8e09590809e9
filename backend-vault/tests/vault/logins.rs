//! Logins against a real OpenBao dev server: tokens from a file and from
//! HOME, AppRole with revocation, the token cache, userpass, JWT with a
//! local key, Kubernetes against a stand-in Kubernetes API.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::Ordering;

use crate::common::{
    approle, approle_yaml, enable_auth, faulty, kv_put, login_round_trip, login_tokens, openssl,
    run_with, self_signed, server, token_alive, unique,
};
use backend_tests::assert_no_leak;
use backend_tests::files::{private_file, set_mode};
use backend_tests::openbao::ROOT_TOKEN;
use serde_json::{Value, json};

#[test]
fn token_from_file_and_from_home() {
    let bao = server();
    let p = format!("secret/{}", unique("tok"));
    kv_put(&bao, &p, json!({"v": "token-file-value"}));
    let dir = tempfile::tempdir().unwrap();
    let file = private_file(dir.path(), "token", "root\n");
    let handle = format!("{p};v");
    let done = run_with(
        &bao.addr,
        dir.path(),
        &format!("auth:\n  token_file: {}\n", file.display()),
        &[],
        &[&handle],
    );
    assert_eq!(done.value(&handle), "token-file-value");
    // ~/.vault-token, as the CLI's token helper leaves it.
    private_file(dir.path(), ".vault-token", "root");
    let done = run_with(&bao.addr, dir.path(), "", &[], &[&handle]);
    assert_eq!(done.value(&handle), "token-file-value");
    // A token file others can write is refused: exit 2, nothing on stdout.
    set_mode(&file, 0o666);
    let done = run_with(
        &bao.addr,
        dir.path(),
        &format!("auth:\n  token_file: {}\n", file.display()),
        &[],
        &[&handle],
    );
    done.expect_code(2);
    assert!(
        done.stderr.contains("writable by group or others"),
        "{done}"
    );
    // A token without access: permission denied, naming the path.
    let done = run_with(
        &bao.addr,
        dir.path(),
        "",
        &[("VAULT_TOKEN", "not-a-token")],
        &[&handle],
    );
    assert!(
        done.error(&handle)
            .starts_with(&format!("{p}: permission denied")),
        "{done}"
    );
}

#[test]
fn approle_login_and_revocation() {
    let bao = server();
    let (mount, role_id, secret_id) = approle(&bao);
    let p = format!("secret/{}", unique("ar"));
    kv_put(&bao, &p, json!({"user": "ar-user", "pass": "ar-pass"}));
    let dir = tempfile::tempdir().unwrap();
    let sid = private_file(dir.path(), "secret-id", &format!("{secret_id}\n"));
    let config = format!(
        "auth:\n  method: approle\n  mount: {mount}\n  role_id: {role_id}\n  secret_id_file: {}\n",
        sid.display()
    );
    let handles = [format!("{p};user"), format!("{p};pass")];
    // Logging at trace, to show that even then nothing secret is printed.
    let done = run_with(
        &bao.addr,
        dir.path(),
        &config,
        &[("SECRET_BACKEND_LOG", "trace")],
        &[&handles[0], &handles[1]],
    );
    assert_eq!(done.value(&handles[0]), "ar-user");
    assert_eq!(done.value(&handles[1]), "ar-pass");
    let tokens = login_tokens(&bao, &mount);
    assert_eq!(tokens.len(), 1, "one login per call");
    assert!(
        done.stderr.contains("resolved 2 of 2"),
        "trace logging is on: {done}"
    );
    assert_no_leak(
        "stderr",
        &done.stderr,
        &[&secret_id, &role_id, "ar-pass", "ar-user", &tokens[0]],
    );
    assert!(
        !token_alive(&bao, &tokens[0]),
        "the login token was revoked"
    );
    assert!(
        token_alive(&bao, ROOT_TOKEN),
        "the lookup check itself works"
    );

    // A wrong secret id: every handle says the login failed, and how.
    let bad = private_file(
        dir.path(),
        "bad-secret-id",
        "00000000-0000-0000-0000-000000000000",
    );
    let config = format!(
        "auth:\n  method: approle\n  mount: {mount}\n  role_id: {role_id}\n  secret_id_file: {}\n",
        bad.display()
    );
    let done = run_with(
        &bao.addr,
        dir.path(),
        &config,
        &[],
        &[&handles[0], &handles[1]],
    );
    for h in &handles {
        let e = done.error(h);
        assert!(
            e.starts_with(&format!(
                "{p}: login failed (approle at auth/{mount}): credentials refused (HTTP "
            )),
            "{e}"
        );
    }
}

#[test]
fn token_cache_file_reuses_a_valid_token() {
    let bao = server();
    let (mount, role_id, secret_id) = approle(&bao);
    let p = format!("secret/{}", unique("cache"));
    kv_put(&bao, &p, json!({"v": "cached-value"}));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token-cache");
    let config = approle_yaml(&mount, &role_id, &secret_id, Some(&cache));
    let h = format!("{p};v");
    for _ in 0..3 {
        let done = run_with(&bao.addr, dir.path(), &config, &[], &[&h]);
        assert_eq!(done.value(&h), "cached-value");
    }
    let tokens = login_tokens(&bao, &mount);
    assert_eq!(tokens.len(), 1, "one login for three calls");
    assert!(
        token_alive(&bao, &tokens[0]),
        "a cached token is not revoked"
    );
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), tokens[0]);
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Revoked behind our back: the next call logs in again.
    bao.api_ok(
        "POST",
        "auth/token/revoke",
        Some(json!({"token": tokens[0]})),
    );
    let done = run_with(&bao.addr, dir.path(), &config, &[], &[&h]);
    assert_eq!(done.value(&h), "cached-value");
    assert_eq!(login_tokens(&bao, &mount).len(), 2);
}

#[test]
fn userpass_login() {
    let bao = server();
    let mount = enable_auth(&bao, "userpass");
    bao.api_ok(
        "POST",
        &format!("auth/{mount}/users/agent"),
        Some(json!({"password": "pw-Secret-9", "token_policies": ["reader"]})),
    );
    let p = format!("secret/{}", unique("up"));
    kv_put(&bao, &p, json!({"v": "userpass-value"}));
    let dir = tempfile::tempdir().unwrap();
    let pw = private_file(dir.path(), "pw", "pw-Secret-9\n");
    let config = format!(
        "auth:\n  method: userpass\n  mount: {mount}\n  username: agent\n  password_file: {}\n",
        pw.display()
    );
    let h = format!("{p};v");
    login_round_trip(
        &bao,
        dir.path(),
        &config,
        &mount,
        (&h, "userpass-value"),
        &["pw-Secret-9"],
    );
    // Wrong password, given inline this time.
    let config = format!(
        "auth:\n  method: userpass\n  mount: {mount}\n  username: agent\n  password: wrong\n"
    );
    let done = run_with(&bao.addr, dir.path(), &config, &[], &[&h]);
    assert!(
        done.error(&h).contains(&format!(
            "login failed (userpass at auth/{mount}): credentials refused"
        )),
        "{done}"
    );
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Makes `jwt-key.pem` in `dir`; returns the PEM public key.
fn signing_key(dir: &Path) -> String {
    openssl(&["genrsa", "-out", "jwt-key.pem", "2048"], dir, None);
    openssl(
        &[
            "rsa",
            "-in",
            "jwt-key.pem",
            "-pubout",
            "-out",
            "jwt-pub.pem",
        ],
        dir,
        None,
    );
    std::fs::read_to_string(dir.join("jwt-pub.pem")).unwrap()
}

/// An RS256 JWT with `claims` (plus iat, nbf, exp), signed with `jwt-key.pem`.
fn sign_jwt(dir: &Path, mut claims: Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    claims["iat"] = now.into();
    claims["nbf"] = (now - 5).into();
    claims["exp"] = (now + 600).into();
    let signing_input = format!(
        "{}.{}",
        b64url(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64url(claims.to_string().as_bytes())
    );
    let sig = openssl(
        &["dgst", "-sha256", "-sign", "jwt-key.pem"],
        dir,
        Some(signing_input.as_bytes()),
    );
    format!("{signing_input}.{}", b64url(&sig))
}

#[test]
fn jwt_login_with_a_local_key() {
    let bao = server();
    let dir = tempfile::tempdir().unwrap();
    let public = signing_key(dir.path());
    let mount = enable_auth(&bao, "jwt");
    bao.api_ok(
        "POST",
        &format!("auth/{mount}/config"),
        Some(json!({"jwt_validation_pubkeys": [public]})),
    );
    bao.api_ok(
        "POST",
        &format!("auth/{mount}/role/agent"),
        Some(
            json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "agent",
                    "bound_audiences": ["secret-backend"], "token_policies": ["reader"]}),
        ),
    );
    let jwt = sign_jwt(dir.path(), json!({"sub": "agent", "aud": "secret-backend"}));
    let jwt_file = private_file(dir.path(), "jwt", &jwt);
    let p = format!("secret/{}", unique("jwt"));
    kv_put(&bao, &p, json!({"v": "jwt-value"}));
    let h = format!("{p};v");
    let config = format!(
        "auth:\n  method: jwt\n  mount: {mount}\n  role: agent\n  jwt_file: {}\n",
        jwt_file.display()
    );
    login_round_trip(
        &bao,
        dir.path(),
        &config,
        &mount,
        (&h, "jwt-value"),
        &[&jwt],
    );
}

#[test]
fn kubernetes_login_against_a_stand_in_kubernetes_api() {
    // OpenBao's kubernetes method asks the Kubernetes API (TokenReview)
    // whether the service account token is valid; no cluster runs here, so
    // a stand-in API answers "authenticated". OpenBao itself is real.
    let review = r#"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1",
        "status":{"authenticated":true,"user":{"username":"system:serviceaccount:monitoring:agent",
        "uid":"6a3f8c2e-0000-4000-8000-000000000001","groups":["system:serviceaccounts"]}}}"#;
    let (k8s, reviews) = faulty(201, review);
    let bao = server();
    let dir = tempfile::tempdir().unwrap();
    signing_key(dir.path());
    let (ca, _) = self_signed(dir.path(), "k8s-ca", "k8s", &[]);
    let mount = enable_auth(&bao, "kubernetes");
    bao.api_ok(
        "POST",
        &format!("auth/{mount}/config"),
        // The CA is required but unused: the stand-in speaks plain HTTP.
        Some(json!({"kubernetes_host": k8s, "disable_local_ca_jwt": true,
                    "kubernetes_ca_cert": std::fs::read_to_string(ca).unwrap()})),
    );
    bao.api_ok(
        "POST",
        &format!("auth/{mount}/role/agent"),
        Some(json!({"bound_service_account_names": ["agent"],
                    "bound_service_account_namespaces": ["monitoring"],
                    "token_policies": ["reader"]})),
    );
    let jwt = sign_jwt(
        dir.path(),
        json!({"iss": "kubernetes/serviceaccount",
               "sub": "system:serviceaccount:monitoring:agent",
               "kubernetes.io/serviceaccount/namespace": "monitoring",
               "kubernetes.io/serviceaccount/service-account.name": "agent",
               "kubernetes.io/serviceaccount/service-account.uid": "6a3f8c2e-0000-4000-8000-000000000001"}),
    );
    let jwt_file = private_file(dir.path(), "sa-token", &jwt);
    let p = format!("secret/{}", unique("k8s"));
    kv_put(&bao, &p, json!({"v": "k8s-value"}));
    let h = format!("{p};v");
    let config = format!(
        "auth:\n  method: kubernetes\n  mount: {mount}\n  role: agent\n  jwt_file: {}\n",
        jwt_file.display()
    );
    login_round_trip(&bao, dir.path(), &config, &mount, (&h, "k8s-value"), &[]);
    assert_eq!(reviews.load(Ordering::SeqCst), 1, "one TokenReview");
}
