"""The AWS credential chain through kinesink's provider (tests/tools/creds_get), against
stand-ins for STS, EC2 IMDSv2, the container endpoint and the IAM Identity Center portal: each
source, its order, AssumeRole on top (signed, with the external id), profiles with
credential_process, role_arn chained through source_profile or credential_source, and SSO, refresh
before expiry, and clear errors with no secret."""
import datetime
import hashlib
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import BUILDDIR, Standin, main  # noqa: E402

CREDS_GET = os.path.join(BUILDDIR, "tests", "tools", "creds_get")


class AwsStandin(Standin):
    """STS, IMDSv2 and the container endpoint (tests/tools/aws_standin.py)."""

    # The base keys the tests' AssumeRole calls are signed with: STS checks those signatures.
    KEYS = ("--sts-key", "AKIDBASE:basesecret", "--sts-key", "AKIDENV:envsecret", "--sts-key", "AKIDKEYS:keysecret")

    def __init__(self, tmp, *args, name="standin"):
        super().__init__(tmp, "aws_standin.py", name, *(self.KEYS + args))

    def requests(self):
        with urllib.request.urlopen(self.url + "/_requests") as r:
            return json.loads(r.read())


def clean_env(tmp, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": tmp.path, "AWS_EC2_METADATA_DISABLED": "true"})
    env.update(extra)
    return env


def creds_and_log(env, *args):
    """creds_get's lines, and what it logged (standard error)."""
    p = subprocess.run([CREDS_GET, "-X", "aws.region=us-east-1"] + list(args), env=env, capture_output=True,
                       text=True, timeout=60)
    return p.stdout.strip().splitlines(), p.stderr


def creds(env, *args):
    return creds_and_log(env, *args)[0]


def test_static_config_first(tmp):
    out = creds(clean_env(tmp, AWS_ACCESS_KEY_ID="AKIDENV", AWS_SECRET_ACCESS_KEY="envsecret"),
                "-X", "aws.credentials.access_key_id=AKIDCONF", "-X", "aws.credentials.secret_access_key=confsecret")
    assert out[0].startswith("source=config akid=AKIDCONF "), out


def test_environment(tmp):
    out = creds(clean_env(tmp, AWS_ACCESS_KEY_ID="AKIDENV", AWS_SECRET_ACCESS_KEY="envsecret",
                          AWS_SESSION_TOKEN="envtoken"))
    assert out[0].startswith("source=environment akid=AKIDENV ") and "token=yes" in out[0], out


def test_profile_files(tmp):
    cred = tmp.file("credentials", "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n"
                                   "[ci]\naws_access_key_id=AKIDCI\naws_secret_access_key=s2\n")
    conf = tmp.file("config", "[profile other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = s3\n")
    env = clean_env(tmp, AWS_SHARED_CREDENTIALS_FILE=cred, AWS_CONFIG_FILE=conf)
    assert creds(env)[0].startswith("source=profile:default akid=AKIDDEFAULT"), creds(env)
    env["AWS_PROFILE"] = "ci"
    assert creds(env)[0].startswith("source=profile:ci akid=AKIDCI"), creds(env)
    env["AWS_PROFILE"] = "other"
    assert creds(env)[0].startswith("source=profile:other akid=AKIDOTHER"), creds(env)


def test_web_identity(tmp):
    sts = AwsStandin(tmp)
    token = tmp.file("token", "eyJhbGciOiJSUzI1NiJ9.service-account-token\n")
    out = creds(clean_env(tmp, AWS_WEB_IDENTITY_TOKEN_FILE=token, AWS_ROLE_ARN="arn:aws:iam::123456789012:role/k",
                          AWS_ENDPOINT_URL_STS=sts.url))
    assert out[0].startswith("source=web-identity akid=ASIASTANDIN0001") and "token=yes" in out[0], out
    body = sts.requests()[0]["body"]
    assert "Action=AssumeRoleWithWebIdentity" in body and "WebIdentityToken=eyJhbGciOiJSUzI1NiJ9.service-account-token" in body


def test_container_credentials(tmp):
    sts = AwsStandin(tmp, "--container-token", "Bearer c0ntainer")
    out = creds(clean_env(tmp, AWS_CONTAINER_CREDENTIALS_FULL_URI=sts.url + "/container/creds",
                          AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer c0ntainer"))
    assert out[0].startswith("source=container akid=ASIASTANDIN0001"), out


def test_imds_v2(tmp):
    imds = AwsStandin(tmp)
    env = clean_env(tmp, AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.url)
    del env["AWS_EC2_METADATA_DISABLED"]
    out = creds(env)
    assert out[0].startswith("source=imds akid=ASIASTANDIN0001"), out
    paths = [(r["method"], r["path"]) for r in imds.requests()]
    assert paths == [("PUT", "/latest/api/token"), ("GET", "/latest/meta-data/iam/security-credentials/"),
                     ("GET", "/latest/meta-data/iam/security-credentials/kinesink-node-role")], paths


def test_assume_role_signed_with_external_id(tmp):
    sts = AwsStandin(tmp)
    out = creds(clean_env(tmp, AWS_ACCESS_KEY_ID="AKIDBASE", AWS_SECRET_ACCESS_KEY="basesecret",
                          AWS_ENDPOINT_URL_STS=sts.url),
                "-X", "aws.credentials.role.arn=arn:aws:iam::123456789012:role/writer",
                "-X", "aws.credentials.role.external_id=ext-42")
    assert out[0].startswith("source=assume-role akid=ASIASTANDIN0001"), out
    req = sts.requests()[0]
    assert req["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDBASE/"), req["headers"]
    assert "/us-east-1/sts/aws4_request" in req["headers"]["Authorization"]
    assert "ExternalId=ext-42" in req["body"] and "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fwriter" in req["body"]


def test_assume_role_signature_checked_by_sts(tmp):
    # The stand-in checks AssumeRole's signature with botocore for the region it stands for: a
    # wrong base secret, and a signature scoped to another region, are refused as STS refuses them.
    sts = AwsStandin(tmp)
    role = ("-X", "aws.credentials.role.arn=arn:aws:iam::123456789012:role/writer")
    out = creds(clean_env(tmp, AWS_ACCESS_KEY_ID="AKIDBASE", AWS_SECRET_ACCESS_KEY="not-the-secret",
                          AWS_ENDPOINT_URL_STS=sts.url), *role)
    assert out[0].startswith("error: ") and "SignatureDoesNotMatch" in out[0], out
    assert "not-the-secret" not in "\n".join(out)
    env = clean_env(tmp, AWS_ACCESS_KEY_ID="AKIDBASE", AWS_SECRET_ACCESS_KEY="basesecret", AWS_ENDPOINT_URL_STS=sts.url)
    p = subprocess.run([CREDS_GET, "-X", "aws.region=eu-west-1"] + list(role), env=env, capture_output=True,
                       text=True, timeout=30)
    assert "IncompleteSignature" in p.stdout + p.stderr and "not 'eu-west-1'" in p.stdout + p.stderr, (p.stdout, p.stderr)
    assert creds(env, *role)[0].startswith("source=assume-role akid=ASIASTANDIN0001"), "signed right: accepted"


def test_refreshed_before_expiry(tmp):
    sts = AwsStandin(tmp, "--ttl", "900")
    out = creds(clean_env(tmp, AWS_ACCESS_KEY_ID="AKIDBASE", AWS_SECRET_ACCESS_KEY="basesecret",
                          AWS_ENDPOINT_URL_STS=sts.url),
                "-X", "aws.credentials.role.arn=arn:aws:iam::123456789012:role/writer",
                "--at", "0", "--at", "300", "--at", "700")
    # Valid for 15 minutes: kept at +5 min, refreshed at +11:40 (within 5 minutes of expiry).
    assert [l.split()[1] for l in out] == ["akid=ASIASTANDIN0001", "akid=ASIASTANDIN0001", "akid=ASIASTANDIN0002"], out
    assert out[2].endswith("refreshes=1"), out
    assert len(sts.requests()) == 2


def test_nothing_found_is_a_clear_error(tmp):
    out = creds(clean_env(tmp, AWS_SECRET_ACCESS_KEY="lonelysecret"))
    assert out[0].startswith("error: no AWS credentials found: tried aws.credentials.* (not set), environment"), out
    assert "web identity" in out[0] and "container" in out[0] and "IMDS" in out[0], out
    assert "lonelysecret" not in "\n".join(out)


PROCESS = """import json, os, sys, datetime
with open(os.environ["PROC_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
mode = sys.argv[1]
exp = (datetime.datetime.utcnow() + datetime.timedelta(seconds=900)).strftime("%Y-%m-%dT%H:%M:%SZ")
if mode == "ok":
    print(json.dumps({"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "procsecret-ok",
                      "SessionToken": "proctoken", "Expiration": exp}))
elif mode == "fail":
    print('{"Version": 1, "AccessKeyId": "AKIDLEAK", "SecretAccessKey": "procsecret-fail"}')
    sys.stderr.write("starting\\nmfa device not present\\n")
    sys.exit(3)
elif mode == "badjson":
    print('{"Version": 1, "AccessKeyId": "AKIDLEAK", "SecretAccessKey": "procsecret-bad"')
elif mode == "version2":
    print(json.dumps({"Version": 2, "AccessKeyId": "AKIDLEAK", "SecretAccessKey": "procsecret-v2"}))
"""


def process_profile(tmp, mode):
    script = tmp.file("cred proc.py", PROCESS)
    conf = tmp.file("config", "[profile proc]\ncredential_process = %s '%s' %s \"two  words\" x\\ y\n"
                              % (sys.executable, script, mode))
    return clean_env(tmp, AWS_CONFIG_FILE=conf, AWS_PROFILE="proc", PROC_LOG=tmp.file("proc.log"))


def test_credential_process(tmp):
    env = process_profile(tmp, "ok")
    out = creds(env, "--at", "0", "--at", "300", "--at", "700")
    assert out[0].startswith("source=process:proc akid=AKIDPROC ") and "token=yes" in out[0], out
    # The process reads the clock after creds_get did: a second may have passed in between.
    assert 890 <= int(out[0].split("expires_in=")[1].split()[0]) <= 901, out
    # Expires in 15 minutes: kept at +5 min, run again at +11:40.
    assert out[1].endswith("refreshes=0") and out[2].endswith("refreshes=1"), out
    with open(env["PROC_LOG"]) as f:
        runs = [json.loads(l) for l in f]
    # Split as a POSIX shell splits words (quotes, backslash), with no shell in between.
    assert runs == [["ok", "two  words", "x y"]] * 2, runs
    assert "procsecret" not in "\n".join(out)


def test_credential_process_errors_hold_no_secret(tmp):
    out = creds(process_profile(tmp, "fail"))
    assert out[0].startswith("error: profile 'proc': credential_process %s exited with status 3; it said: "
                             "mfa device not present" % sys.executable), out
    out += creds(process_profile(tmp, "badjson"))
    assert "credential_process printed" in out[1] and "not a JSON object" in out[1], out
    out += creds(process_profile(tmp, "version2"))
    assert "unsupported \"Version\"; only 1 is supported" in out[2], out
    assert len(out) == 3 and "procsecret" not in "\n".join(out) and "AKIDLEAK" not in "\n".join(out), out


def assumed(req):
    return {k: v[0] for k, v in urllib.parse.parse_qs(req["body"]).items()}


def test_role_chained_through_source_profiles(tmp):
    sts = AwsStandin(tmp)
    cred = tmp.file("credentials", "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = basesecret\n")
    conf = tmp.file("config", "[profile mid]\nrole_arn = arn:aws:iam::111122223333:role/mid\nsource_profile = base\n"
                              "external_id = ext-mid\n"
                              "[profile top]\nrole_arn = arn:aws:iam::444455556666:role/top\nsource_profile = mid\n"
                              "role_session_name = sess-top\nduration_seconds = 1800\n")
    out = creds(clean_env(tmp, AWS_SHARED_CREDENTIALS_FILE=cred, AWS_CONFIG_FILE=conf, AWS_PROFILE="top",
                          AWS_ENDPOINT_URL_STS=sts.url))
    assert out[0].startswith("source=role:top akid=ASIASTANDIN0002 ") and "token=yes" in out[0], out
    reqs = sts.requests()
    assert len(reqs) == 2, reqs
    first, second = assumed(reqs[0]), assumed(reqs[1])
    assert first["Action"] == "AssumeRole" and first["RoleArn"] == "arn:aws:iam::111122223333:role/mid", first
    assert first["ExternalId"] == "ext-mid" and "DurationSeconds" not in first, first
    assert reqs[0]["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDBASE/"), reqs[0]
    assert second["RoleArn"] == "arn:aws:iam::444455556666:role/top" and "ExternalId" not in second, second
    assert second["RoleSessionName"] == "sess-top" and second["DurationSeconds"] == "1800", second
    # The second call is signed with what the first returned.
    assert reqs[1]["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=ASIASTANDIN0001/"), reqs[1]
    assert reqs[1]["headers"]["X-Amz-Security-Token"] == "standin-token-1", reqs[1]["headers"]


def test_role_profile_loop_is_an_error(tmp):
    conf = tmp.file("config", "[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\n"
                              "[profile b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = a\n")
    out = creds(clean_env(tmp, AWS_CONFIG_FILE=conf, AWS_PROFILE="a"))
    assert out == ["error: source_profile loop in the AWS config: a -> b -> a; make the chain end in a profile "
                   "with credentials"], out


def test_role_from_credential_source_environment(tmp):
    sts = AwsStandin(tmp)
    conf = tmp.file("config", "[profile envrole]\nrole_arn = arn:aws:iam::111122223333:role/from-env\n"
                              "credential_source = Environment\nexternal_id = ext-env\n")
    out = creds(clean_env(tmp, AWS_CONFIG_FILE=conf, AWS_PROFILE="envrole", AWS_ACCESS_KEY_ID="AKIDENV",
                          AWS_SECRET_ACCESS_KEY="envsecret", AWS_ENDPOINT_URL_STS=sts.url))
    assert out[0].startswith("source=role:envrole akid=ASIASTANDIN0001 "), out
    req = sts.requests()[0]
    assert assumed(req)["RoleArn"] == "arn:aws:iam::111122223333:role/from-env", req
    assert assumed(req)["ExternalId"] == "ext-env", req
    assert req["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDENV/"), req["headers"]


def test_role_from_credential_source_imds(tmp):
    aws = AwsStandin(tmp)
    conf = tmp.file("config", "[profile node]\nrole_arn = arn:aws:iam::111122223333:role/from-node\n"
                              "credential_source = Ec2InstanceMetadata\n")
    env = clean_env(tmp, AWS_CONFIG_FILE=conf, AWS_PROFILE="node", AWS_EC2_METADATA_SERVICE_ENDPOINT=aws.url,
                    AWS_ENDPOINT_URL_STS=aws.url)
    del env["AWS_EC2_METADATA_DISABLED"]
    out = creds(env)
    assert out[0].startswith("source=role:node akid=ASIASTANDIN0002 "), out
    reqs = aws.requests()
    assert [r["method"] for r in reqs] == ["PUT", "GET", "GET", "POST"], reqs
    assert assumed(reqs[3])["RoleArn"] == "arn:aws:iam::111122223333:role/from-node", reqs[3]
    # Signed with the instance's credentials.
    assert reqs[3]["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=ASIASTANDIN0001/"), reqs[3]


def test_web_identity_profile(tmp):
    """A profile's web_identity_token_file + role_arn (+ role_session_name): AssumeRoleWithWebIdentity
    with the file's token, read again at each refresh; such a profile also serves as a source_profile."""
    sts = AwsStandin(tmp, "--ttl", "900")
    token = tmp.file("wi token", "eyJhbGciOiJSUzI1NiJ9.profile-token-1\n")
    conf = tmp.file("config", "[profile wi]\nweb_identity_token_file = %s\n"
                              "role_arn = arn:aws:iam::111122223333:role/pod\nrole_session_name = sess-wi\n"
                              "[profile top]\nrole_arn = arn:aws:iam::444455556666:role/top\nsource_profile = wi\n"
                              "[profile norole]\nweb_identity_token_file = %s\n" % (token, token))
    env = clean_env(tmp, AWS_CONFIG_FILE=conf, AWS_PROFILE="wi", AWS_ENDPOINT_URL_STS=sts.url)
    out = creds(env, "--at", "0", "--at", "300", "--at", "700")
    assert out[0].startswith("source=web-identity:wi akid=ASIASTANDIN0001 ") and "token=yes" in out[0], out
    # Valid for 15 minutes: kept at +5 min, assumed again at +11:40.
    assert out[1].startswith("source=web-identity:wi akid=ASIASTANDIN0001 ") and out[1].endswith("refreshes=0"), out
    assert out[2].startswith("source=web-identity:wi akid=ASIASTANDIN0002 ") and out[2].endswith("refreshes=1"), out
    reqs = sts.requests()
    assert len(reqs) == 2, reqs
    for r in reqs:
        form = assumed(r)
        assert form["Action"] == "AssumeRoleWithWebIdentity" and "Authorization" not in r["headers"], r
        assert form["RoleArn"] == "arn:aws:iam::111122223333:role/pod" and form["RoleSessionName"] == "sess-wi", form
        assert form["WebIdentityToken"] == "eyJhbGciOiJSUzI1NiJ9.profile-token-1", form
    env["AWS_PROFILE"] = "top"
    out += creds(env)
    assert out[3].startswith("source=role:top akid=ASIASTANDIN0004 "), out
    reqs = sts.requests()[2:]
    assert [assumed(r)["Action"] for r in reqs] == ["AssumeRoleWithWebIdentity", "AssumeRole"], reqs
    assert reqs[1]["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=ASIASTANDIN0003/"), reqs[1]
    env["AWS_PROFILE"] = "norole"
    out += creds(env)
    assert out[4] == "error: profile 'norole' has web_identity_token_file but no role_arn; set the role to " \
                     "assume in %s" % conf, out
    assert "profile-token" not in "\n".join(out) and "standin-secret" not in "\n".join(out), out


def test_web_identity_order_and_environment(tmp):
    """As the SDKs: the environment's web identity comes before the profile's static keys and
    credential_process (but after its role_arn + source_profile), and AWS_ROLE_ARN /
    AWS_ROLE_SESSION_NAME override a profile's role_arn / role_session_name key by key."""
    sts = AwsStandin(tmp)
    env_token = tmp.file("env-token", "eyJhbGciOiJSUzI1NiJ9.env-token\n")
    prof_token = tmp.file("prof-token", "eyJhbGciOiJSUzI1NiJ9.profile-token\n")
    cred = tmp.file("credentials", "[keys]\naws_access_key_id = AKIDKEYS\naws_secret_access_key = keysecret\n")
    conf = tmp.file("config", "[profile wi]\nweb_identity_token_file = %s\nrole_arn = arn:aws:iam::1:role/prof\n"
                              "role_session_name = prof-session\n"
                              "[profile chained]\nrole_arn = arn:aws:iam::1:role/chained\nsource_profile = keys\n"
                              % prof_token)
    env = clean_env(tmp, AWS_SHARED_CREDENTIALS_FILE=cred, AWS_CONFIG_FILE=conf, AWS_PROFILE="keys",
                    AWS_WEB_IDENTITY_TOKEN_FILE=env_token, AWS_ROLE_ARN="arn:aws:iam::1:role/env",
                    AWS_ENDPOINT_URL_STS=sts.url)
    out = creds(env)
    assert out[0].startswith("source=web-identity akid=ASIASTANDIN0001 "), out
    form = assumed(sts.requests()[-1])
    assert form["RoleArn"] == "arn:aws:iam::1:role/env" and form["WebIdentityToken"].endswith(".env-token"), form
    env["AWS_PROFILE"] = "chained"
    out += creds(env)
    assert out[1].startswith("source=role:chained akid=ASIASTANDIN0002 "), out
    assert assumed(sts.requests()[-1])["Action"] == "AssumeRole", sts.requests()[-1]
    env["AWS_PROFILE"] = "wi"
    del env["AWS_WEB_IDENTITY_TOKEN_FILE"]
    out += creds(env)
    assert out[2].startswith("source=web-identity:wi akid=ASIASTANDIN0003 "), out
    form = assumed(sts.requests()[-1])
    assert form["RoleArn"] == "arn:aws:iam::1:role/env" and form["RoleSessionName"] == "prof-session", form
    assert form["WebIdentityToken"].endswith(".profile-token"), form
    assert "env-token" not in "\n".join(out) and "profile-token" not in "\n".join(out), out


def test_web_identity_profile_unreadable_token(tmp):
    sts = AwsStandin(tmp)
    missing = os.path.join(tmp.path, "no-such-token")
    conf = tmp.file("config", "[profile wi]\nweb_identity_token_file = %s\n"
                              "role_arn = arn:aws:iam::111122223333:role/pod\n" % missing)
    out = creds(clean_env(tmp, AWS_CONFIG_FILE=conf, AWS_PROFILE="wi", AWS_ENDPOINT_URL_STS=sts.url))
    assert out == ["error: profile 'wi': web-identity:wi: cannot read the web identity token file %s: "
                   "No such file or directory" % missing], out
    assert sts.requests() == []


SSO_URL = "https://d-9067example.awsapps.com/start"


def iso_in(seconds):
    return (datetime.datetime.utcnow() + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def sso_cache_file(home, key):
    return os.path.join(home, ".aws", "sso", "cache", hashlib.sha1(key.encode()).hexdigest() + ".json")


def sso_setup(tmp, key, expires_in, token="sso-access-t0ken", home=None, **extra):
    path = sso_cache_file(home or tmp.path, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(dict({"startUrl": SSO_URL, "region": "eu-west-1", "accessToken": token,
                        "expiresAt": iso_in(expires_in)}, **extra), f)
    return tmp.file("config", "[profile legacy]\nsso_start_url = %s\nsso_region = eu-west-1\n"
                              "sso_account_id = 111122223333\nsso_role_name = Writer\n"
                              "[profile wrongrole]\nsso_session = corp\nsso_account_id = 111122223333\n"
                              "sso_role_name = Reader\n"
                              "[profile modern]\nsso_session = corp\nsso_account_id = 111122223333\n"
                              "sso_role_name = Writer\n"
                              "[sso-session corp]\nsso_start_url = %s\nsso_region = eu-west-1\n" % (SSO_URL, SSO_URL))


def sso_standin(tmp):
    return AwsStandin(tmp, "--ttl", "900", "--sso-token", "sso-access-t0ken", "--sso-account", "111122223333",
                      "--sso-role", "Writer")


def test_sso_legacy_profile(tmp):
    portal = sso_standin(tmp)
    env = clean_env(tmp, AWS_CONFIG_FILE=sso_setup(tmp, SSO_URL, 3600), AWS_PROFILE="legacy",
                    AWS_ENDPOINT_URL_SSO=portal.url)
    out = creds(env, "--at", "0", "--at", "700")
    assert out[0].startswith("source=sso:legacy akid=ASIASTANDIN0001 ") and "token=yes" in out[0], out
    assert 890 <= int(out[0].split("expires_in=")[1].split()[0]) <= 900, out
    assert out[1].startswith("source=sso:legacy akid=ASIASTANDIN0002 ") and out[1].endswith("refreshes=1"), out
    req = portal.requests()[0]
    assert req["method"] == "GET" and req["path"] == "/federation/credentials?role_name=Writer&account_id=111122223333", req
    assert req["headers"]["x-amz-sso_bearer_token"] == "sso-access-t0ken" and "Authorization" not in req["headers"], req


def test_sso_session_profile_and_refusal(tmp):
    portal = sso_standin(tmp)
    # An sso_session's token is cached under the session's name, not the start URL.
    env = clean_env(tmp, AWS_CONFIG_FILE=sso_setup(tmp, "corp", 3600), AWS_PROFILE="modern",
                    AWS_ENDPOINT_URL_SSO=portal.url)
    out = creds(env)
    assert out[0].startswith("source=sso:modern akid=ASIASTANDIN0001 "), out
    env["AWS_PROFILE"] = "wrongrole"
    out = creds(env)
    assert out[0].startswith("error: profile 'wrongrole': SSO GetRoleCredentials (account 111122223333, role Reader) "
                             "at %s/federation/credentials answered HTTP 403" % portal.url), out
    assert "sso-access-t0ken" not in out[0], out


def test_sso_expired_or_missing_token(tmp):
    portal = sso_standin(tmp)
    env = clean_env(tmp, AWS_CONFIG_FILE=sso_setup(tmp, SSO_URL, -60), AWS_PROFILE="legacy",
                    AWS_ENDPOINT_URL_SSO=portal.url)
    out = creds(env)
    assert out[0].startswith("error: profile 'legacy': the SSO token cached in %s/.aws/sso/cache/" % tmp.path), out
    assert "expired at" in out[0] and out[0].endswith("run `aws sso login --profile legacy`"), out
    env["AWS_PROFILE"] = "modern"  # nothing cached for the session "corp"
    out += creds(env)
    assert "no usable SSO token cached" in out[1] and "aws sso login --sso-session corp" in out[1], out
    assert "sso-access-t0ken" not in "\n".join(out) and portal.requests() == [], out


# What `aws sso login --sso-session corp` caches: the client registration and a refresh token.
REGISTRATION = {"clientId": "client-1d", "clientSecret": "client-s3cret", "refreshToken": "r3fresh-t0ken"}


def oidc_standin(tmp, name="standin"):
    return AwsStandin(tmp, "--ttl", "900", "--sso-token", "sso-access-t0ken", "--sso-account", "111122223333",
                      "--sso-role", "Writer", "--oidc-client", "client-1d:client-s3cret",
                      "--oidc-refresh-token", "r3fresh-t0ken", "--oidc-expires-in", "3600", name=name)


SECRETS = ("sso-access-t0ken", "stale-t0ken", "client-s3cret", "r3fresh-t0ken", "standin-secret")

# botocore's SSOTokenProvider (what the AWS CLI and boto3 run) refreshing the same cache entry.
BOTOCORE_REFRESH = """import os, sys
import botocore.session
from botocore.tokens import SSOTokenProvider, _sso_json_dumps
from botocore.utils import JSONFileCache
session = botocore.session.Session(profile="modern")
create_client = session.create_client
# The SSO OIDC endpoint of the stand-in (older botocore has no AWS_ENDPOINT_URL_SSO_OIDC).
session.create_client = lambda *a, **kw: create_client(*a, endpoint_url=os.environ["OIDC_URL"], **kw)
cache = JSONFileCache(os.path.join(os.environ["HOME"], ".aws", "sso", "cache"), dumps_func=_sso_json_dumps)
provider = SSOTokenProvider(session, cache=cache)
print(provider.load_token().get_frozen_token().token == "sso-access-t0ken")
"""


def test_sso_token_refreshed_as_botocore_does(tmp):
    """An sso-session token within 15 minutes of its expiry is refreshed with SSO OIDC CreateToken
    (the refresh token grant) and written back to the cache as botocore writes it; the next
    resolution, at the credentials' refresh, uses the written token without another CreateToken."""
    ours, ref = oidc_standin(tmp), oidc_standin(tmp, name="botocore")
    ref_home = os.path.join(tmp.path, "botocore-home")
    conf = sso_setup(tmp, "corp", 600, token="stale-t0ken", registrationExpiresAt=iso_in(86400 * 80), **REGISTRATION)
    sso_setup(tmp, "corp", 600, token="stale-t0ken", home=ref_home, registrationExpiresAt=iso_in(86400 * 80),
              **REGISTRATION)
    p = subprocess.run([sys.executable, "-c", BOTOCORE_REFRESH], capture_output=True, text=True, timeout=60,
                       env=clean_env(tmp, HOME=ref_home, AWS_CONFIG_FILE=conf, OIDC_URL=ref.url))
    assert p.stdout.strip() == "True", p.stdout + p.stderr

    env = clean_env(tmp, AWS_CONFIG_FILE=conf, AWS_PROFILE="modern", AWS_ENDPOINT_URL_SSO=ours.url,
                    AWS_ENDPOINT_URL_SSO_OIDC=ours.url)
    out, log = creds_and_log(env, "--at", "0", "--at", "700")
    assert out[0].startswith("source=sso:modern akid=ASIASTANDIN0001 "), (out, log)
    assert out[1].startswith("source=sso:modern akid=ASIASTANDIN0002 ") and out[1].endswith("refreshes=1"), out
    reqs = [(r["method"], r["path"]) for r in ours.requests()]
    assert reqs == [("POST", "/token")] + [("GET", "/federation/credentials?role_name=Writer&"
                                            "account_id=111122223333")] * 2, reqs
    # The same CreateToken request as botocore's (unsigned JSON).
    mine, theirs = ours.requests()[0], ref.requests()[0]
    assert json.loads(mine["body"]) == json.loads(theirs["body"]) == {
        "clientId": "client-1d", "clientSecret": "client-s3cret", "grantType": "refresh_token",
        "refreshToken": "r3fresh-t0ken"}, (mine, theirs)
    assert mine["headers"]["Content-Type"] == "application/json" and "Authorization" not in mine["headers"], mine
    # The same cache entry as botocore's, but for the time it was written.
    with open(sso_cache_file(tmp.path, "corp")) as f:
        written = json.load(f)
    with open(sso_cache_file(ref_home, "corp")) as f:
        expected = json.load(f)
    assert written["refreshToken"] == "r3fresh-t0ken-2" and written["accessToken"] == "sso-access-t0ken", written
    exp = [datetime.datetime.strptime(d.pop("expiresAt"), "%Y-%m-%dT%H:%M:%SZ") for d in (written, expected)]
    assert written == expected, (written, expected)
    assert abs((exp[0] - exp[1]).total_seconds()) < 60, exp
    assert abs((exp[0] - datetime.datetime.utcnow()).total_seconds() - 3600) < 60, exp
    cache_dir = os.path.dirname(sso_cache_file(tmp.path, "corp"))
    assert os.listdir(cache_dir) == [os.path.basename(sso_cache_file(tmp.path, "corp"))], os.listdir(cache_dir)
    assert os.stat(sso_cache_file(tmp.path, "corp")).st_mode & 0o077 == 0
    assert "refreshed the SSO token of sso-session 'corp'" in log, log
    assert not [s for s in SECRETS if s in "\n".join(out) + log], (out, log)


def test_sso_token_expired_without_refresh_token(tmp):
    portal = oidc_standin(tmp)
    conf = sso_setup(tmp, "corp", -60, token="stale-t0ken")
    out, log = creds_and_log(clean_env(tmp, AWS_CONFIG_FILE=conf, AWS_PROFILE="modern",
                                       AWS_ENDPOINT_URL_SSO=portal.url, AWS_ENDPOINT_URL_SSO_OIDC=portal.url))
    assert out[0].startswith("error: profile 'modern': the SSO token cached in %s expired at "
                             % sso_cache_file(tmp.path, "corp")), out
    assert out[0].endswith(" and it holds no refreshToken; run `aws sso login --sso-session corp` "
                           "(or --profile modern)"), out
    assert portal.requests() == [] and not [s for s in SECRETS if s in out[0] + log], (out, log)


def test_sso_token_refresh_refused_or_registration_expired(tmp):
    portal = oidc_standin(tmp)
    # Expired, and the refresh token is no longer accepted: the error says so, and to log in again.
    conf = sso_setup(tmp, "corp", -60, token="stale-t0ken", registrationExpiresAt=iso_in(86400),
                     **dict(REGISTRATION, refreshToken="r3fresh-t0ken-revoked"))
    env = clean_env(tmp, AWS_CONFIG_FILE=conf, AWS_PROFILE="modern", AWS_ENDPOINT_URL_SSO=portal.url,
                    AWS_ENDPOINT_URL_SSO_OIDC=portal.url)
    out, log = creds_and_log(env)
    assert out[0].startswith("error: profile 'modern': the SSO token cached in "), out
    assert (" and cannot be refreshed: SSO OIDC CreateToken at %s/token answered HTTP 400 invalid_grant: Invalid "
            "refresh token provided (request id none); run `aws sso login --sso-session corp`" % portal.url) in out[0], out
    # Not yet expired: the cached token serves until it expires, with a warning.
    sso_setup(tmp, "corp", 300, registrationExpiresAt=iso_in(86400),
              **dict(REGISTRATION, refreshToken="r3fresh-t0ken-revoked"))
    more, log2 = creds_and_log(env)
    assert more[0].startswith("source=sso:modern akid=ASIASTANDIN0001 "), (more, log2)
    assert "cannot refresh the SSO token of sso-session 'corp'" in log2 and "using the cached one" in log2, log2
    # The client registration expired: no CreateToken at all.
    sso_setup(tmp, "corp", -60, token="stale-t0ken", registrationExpiresAt=iso_in(-3600), **REGISTRATION)
    out += creds(env)
    assert " and its client registration expired at " in out[1] and "aws sso login --sso-session corp" in out[1], out
    assert [r["path"] for r in portal.requests()] == ["/token", "/token", "/federation/credentials?role_name=Writer&"
                                                      "account_id=111122223333"], portal.requests()
    assert not [s for s in SECRETS if s in "\n".join(out + more) + log + log2], (out, more, log, log2)


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
