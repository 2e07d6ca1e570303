"""Can a pod reach a Service? Asked from inside the pod, with whatever client its image has.

Images differ (Node, Python, busybox, distroless): each candidate below resolves the name
through cluster DNS and then opens a connection (an HTTP GET when a path is given). A
candidate whose program is missing answers 126/127 and the next one is tried.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import kube

MISSING = (126, 127)


def candidates(host: str, port: int, path: str | None) -> list[tuple[str, list[str]]]:
    """(client, argv) in order of preference; each prints 'ADDRESS STATUS' and exits 0 on success."""
    url = f"http://{host}:{port}{path}" if path else None
    node = (f"require('dns').lookup('{host}',(e,a)=>{{if(e){{console.log('DNS '+e.code);process.exit(2)}}"
            + (f"require('http').get('{url}',{{timeout:5000}},r=>{{console.log(a+' '+r.statusCode);"
               f"process.exit(r.statusCode<400?0:3)}}).on('error',x=>{{console.log(a+' HTTP '+x.code);process.exit(4)}})"
               if url else
               f"const s=require('net').connect({port},a,()=>{{console.log(a+' open');process.exit(0)}});"
               f"s.on('error',x=>{{console.log(a+' TCP '+x.code);process.exit(4)}})")
            + "})")
    python = ("import socket,sys,urllib.request\n"
              f"try:\n a=socket.gethostbyname('{host}')\nexcept OSError as e:\n print('DNS',e);sys.exit(2)\n"
              + (f"try:\n r=urllib.request.urlopen('{url}',timeout=5);print(a,r.status)\n"
                 f"except Exception as e:\n print(a,'HTTP',e);sys.exit(4)\n" if url else
                 f"try:\n socket.create_connection((a,{port}),5);print(a,'open')\n"
                 f"except OSError as e:\n print(a,'TCP',e);sys.exit(4)\n"))
    found = [("node", ["node", "-e", node]), ("python3", ["python3", "-c", python])]
    if url:
        found += [("wget", ["wget", "-q", "-T", "5", "-O", "/dev/null", url]), ("curl", ["curl", "-fsS", "-m", "5", "-o",
                                                                                       "/dev/null", url])]
    return found


@dataclass
class Reached:
    ok: bool
    client: str  # which client answered ('' when the image has none)
    code: int | None
    output: str

    def __str__(self) -> str:
        return f"{self.client or 'no client'} exit {self.code}: {self.output.strip()[-300:]}"


def from_pod(apis: kube.KubeApis, namespace: str, pod: str, host: str, port: int, path: str | None,
             container: str | None = None) -> Reached:
    for client, argv in candidates(host, port, path):
        code, output = kube.exec_in_pod(apis, namespace, pod, argv, container=container)
        if code in MISSING or "executable file not found" in output or "no such file or directory" in output.lower():
            continue
        return Reached(code == 0, client, code, output)
    return Reached(False, "", None, "the image has none of node, python3, wget, curl")
