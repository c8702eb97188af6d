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

    def __init__(self, tmp, *args):
        super().__init__(tmp, "aws_standin.py", "standin", *args)

    def requests(self):
        with urllib.request.urlopen(self.url + "/_requests") as r:
            return json.loads(r.read())


def clean_env(tmp, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": tmp.path, "AWS_EC2_METADATA_DISABLED": "true"})
    env.update(extra)
    return env


def creds(env, *args):
    p = subprocess.run([CREDS_GET, "-X", "aws.region=us-east-1"] + list(args), env=env, capture_output=True,
                       text=True, timeout=60)
    return p.stdout.strip().splitlines()


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


def sso_setup(tmp, key, expires_in, token="sso-access-t0ken"):
    cache = os.path.join(tmp.path, ".aws", "sso", "cache")
    os.makedirs(cache, exist_ok=True)
    exp = datetime.datetime.utcnow() + datetime.timedelta(seconds=expires_in)
    with open(os.path.join(cache, hashlib.sha1(key.encode()).hexdigest() + ".json"), "w") as f:
        json.dump({"startUrl": SSO_URL, "region": "eu-west-1", "accessToken": token,
                   "expiresAt": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}, f)
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


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
