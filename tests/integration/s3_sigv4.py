"""A signature-checking front for s3rver (which accepts any signature): an
HTTP proxy that verifies each request's AWS Signature V4 (header form, as
the S3 documentation gives it: canonical request, string to sign, the
HMAC chain of the secret) and the payload's x-amz-content-sha256 against
the body, refuses a bad one with 403 SignatureDoesNotMatch, and forwards a
good one to s3rver without its Authorization (s3rver knows only its own
keys, and takes an anonymous request). An implementation independent of libcurl's, so that
the upload service's signing is checked by something that did not write
it.

    proxy = SigV4Proxy(upstream="http://127.0.0.1:4568", key="K", secret="S").start()
    proxy.url, proxy.verified, proxy.refused
"""

import hashlib
import hmac
import http.server
import re
import threading
import urllib.parse

import requests

from tally import free_port

AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, "
                  r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_signature(secret, method, path, query, headers, signed, amz_date, region):
    """The SigV4 signature of a request (headers: lower-case name → value)."""
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(urllib.parse.parse_qsl(query, keep_blank_values=True)))
    canonical_headers = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n"
                                for name in signed)
    canonical = "\n".join([method, urllib.parse.quote(path, safe="/-_.~"), canonical_query,
                           canonical_headers, ";".join(signed),
                           headers.get("x-amz-content-sha256", "")])
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret).encode(), amz_date[:8])
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class SigV4Proxy:
    def __init__(self, upstream, key, secret, region="us-east-1"):
        self.upstream, self.key, self.secret, self.region = upstream, key, secret, region
        self.verified = 0
        self.refused = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def check(self, method, target, headers, body):
        """None when the request is signed right, else why not."""
        headers = {k.lower(): v for k, v in headers.items()}
        m = AUTH.match(headers.get("authorization", ""))
        if not m:
            return "no SigV4 Authorization header"
        key, date, region, signed, signature = m.groups()
        signed = signed.split(";")
        if key != self.key or region != self.region:
            return "unknown key or region"
        if "host" not in signed or "x-amz-date" not in signed \
                or "x-amz-content-sha256" not in signed:
            return "host, x-amz-date and x-amz-content-sha256 must be signed"
        amz_date = headers.get("x-amz-date", "")
        if amz_date[:8] != date:
            return "x-amz-date is not the credential's date"
        if headers.get("x-amz-content-sha256") != hashlib.sha256(body).hexdigest():
            return "x-amz-content-sha256 is not the body's"
        path, _, query = target.partition("?")
        want = expected_signature(self.secret, method, path, query, headers, signed,
                                  amz_date, region)
        if not hmac.compare_digest(want, signature):
            return "SignatureDoesNotMatch"
        return None

    def _handler(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                why = proxy.check(self.command, self.path, dict(self.headers), body)
                if why:
                    proxy.refused.append(f"{self.command} {self.path}: {why}")
                    out = (f"<Error><Code>SignatureDoesNotMatch</Code>"
                           f"<Message>{why}</Message></Error>").encode()
                    self.send_response(403)
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                proxy.verified += 1
                forward = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection",
                                                "authorization")}
                r = requests.request(self.command, proxy.upstream + self.path, data=body,
                                     headers=forward, timeout=30)
                self.send_response(r.status_code)
                content = b"" if self.command == "HEAD" else r.content
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                         "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = _any

        return Handler
