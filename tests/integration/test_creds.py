"""The AWS credential chain through kinesink's provider (tests/tools/creds_get), against
stand-ins for STS, EC2 IMDSv2 and the container endpoint: each source, its order, AssumeRole on
top (signed, with the external id), refresh before expiry, and a clear error with no secret."""
import json
import os
import subprocess
import sys
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


if __name__ == "__main__":
    main([(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")])
