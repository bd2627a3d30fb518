#!/usr/bin/env python3
"""Init time of a Lambda binary under a minimal local Lambda Runtime API.

Spawns the binary N times with AWS_LAMBDA_RUNTIME_API pointing at a loopback server and measures the time from
process spawn to its first `GET /2018-06-01/runtime/invocation/next` (Lambda's init phase). Prints the median.
Usage: measure-init.py BINARY [N]
"""
import http.server, os, statistics, subprocess, sys, threading, time

first_request = threading.Event()

class Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            first_request.set()
            time.sleep(0.05)  # hold the long poll briefly; the process is killed right after
        self.send_response(500); self.end_headers()
    def do_POST(self):
        self.send_response(202); self.end_headers()
    def log_message(self, *args):
        pass

def main():
    binary, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_port}", AWS_LAMBDA_FUNCTION_NAME="probe",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_FUNCTION_VERSION="1", AWS_REGION="eu-central-1",
               AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_EC2_METADATA_DISABLED="true")
    samples = []
    for _ in range(runs):
        first_request.clear()
        start = time.perf_counter()
        process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not first_request.wait(10):
            process.kill(); sys.exit(f"{binary} never asked for an invocation")
        samples.append((time.perf_counter() - start) * 1000)
        process.kill(); process.wait()
    print(f"init_ms_median={statistics.median(samples):.2f} init_ms_min={min(samples):.2f} runs={runs}")

if __name__ == "__main__":
    main()
