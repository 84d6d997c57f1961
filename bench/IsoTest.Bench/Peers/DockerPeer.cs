using System.Diagnostics;

namespace IsoTest.Bench.Peers;

/// <summary>
/// <c>docker run --rm</c> against the local Docker Engine. Docker cannot use the host's <c>/</c> as a
/// root filesystem, so it runs <c>/bin/true</c> from a busybox-static image (<c>isotest/busybox</c>),
/// built here with <c>docker import</c> when missing (there is no registry to pull from).
/// </summary>
internal sealed class DockerPeer : IPeer
{
    private const string Image = "isotest/busybox:latest";
    private const string DaemonLog = "/tmp/isotest-bench-dockerd.log";

    private const string ImportScript = """
        set -e
        r=$(mktemp -d /tmp/isotest-bench-busybox.XXXXXX)
        trap 'rm -rf "$r"' EXIT
        mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/proc" "$r/sys" "$r/dev" "$r/root"
        chmod 1777 "$r/tmp"
        cp "$1" "$r/bin/busybox"
        chroot "$r" /bin/busybox --install -s
        echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
        echo 'root:x:0:' >"$r/etc/group"
        tar -C "$r" -c . | docker import --change 'CMD ["/bin/sh"]' - "$2" >/dev/null
        """;

    // The docker CLI in /usr/local/bin speaks a newer API than Debian's dockerd (20.10, API 1.41).
    private static readonly Dictionary<string, string> DockerEnvironment = new()
    {
        ["DOCKER_API_VERSION"] = Environment.GetEnvironmentVariable("DOCKER_API_VERSION") ?? "1.41",
    };

    private Process? _startedDaemon;
    private string _version = "docker";

    public string Name => "docker run --rm";

    public string Notes =>
        $"{_version}; busybox-static image ({Image}: docker cannot use the host's /), --network none" +
        (_startedDaemon is null ? "" : "; dockerd started by the bench");

    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        if (Shell.Which("docker") is null)
        {
            throw new PeerUnavailableException("docker CLI not found: apt-get install docker.io");
        }

        if (await ServerVersionAsync(cancellationToken) is null)
        {
            await StartDaemonAsync(cancellationToken);
        }

        _version = $"Docker Engine {await ServerVersionAsync(cancellationToken)}";

        if ((await DockerAsync(["image", "inspect", Image], cancellationToken)).ExitCode != 0)
        {
            var busybox = new[] { "/bin/busybox", "/usr/bin/busybox" }.FirstOrDefault(File.Exists)
                ?? throw new PeerUnavailableException($"image {Image} is missing and busybox is not installed to build it: apt-get install busybox-static");
            var import = await Shell.RunAsync("/bin/sh", ["-c", ImportScript, "sh", busybox, Image], DockerEnvironment, cancellationToken);
            if (import.ExitCode != 0)
            {
                throw new PeerUnavailableException($"could not build {Image} with docker import: {import.Tail}");
            }
        }
    }

    public async Task CycleAsync(CancellationToken cancellationToken)
    {
        var run = await DockerAsync(
            ["run", "--rm", "--network", "none", "--memory", "64m", "--cpus", "0.5", Image, "/bin/true"],
            cancellationToken);
        if (run.ExitCode != 0)
        {
            throw new InvalidOperationException($"docker run exited with {run.ExitCode}: {run.Tail}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_startedDaemon is null)
        {
            return;
        }

        // Ours, so ours to stop.
        await Shell.StopDaemonAsync(_startedDaemon);
        _startedDaemon.Dispose();
    }

    private static Task<Shell.Result> DockerAsync(IEnumerable<string> args, CancellationToken cancellationToken) =>
        Shell.RunAsync("docker", args, DockerEnvironment, cancellationToken);

    private static async Task<string?> ServerVersionAsync(CancellationToken cancellationToken)
    {
        var version = await DockerAsync(["version", "--format", "{{.Server.Version}}"], cancellationToken);
        return version.ExitCode == 0 ? version.Stdout.Trim() : null;
    }

    private async Task StartDaemonAsync(CancellationToken cancellationToken)
    {
        if (Shell.Which("dockerd") is null || !Environment.IsPrivilegedProcess)
        {
            throw new PeerUnavailableException("no Docker daemon answers, and this bench cannot start one (needs dockerd and root): start dockerd, or apt-get install docker.io");
        }

        if (Environment.GetEnvironmentVariable("DOCKER_HOST") is { Length: > 0 } host)
        {
            throw new PeerUnavailableException($"the Docker daemon at DOCKER_HOST={host} does not answer: start it or unset DOCKER_HOST");
        }

        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        foreach (var arg in new[] { "-c", $"exec dockerd --host unix:///var/run/docker.sock >>{DaemonLog} 2>&1 </dev/null" })
        {
            info.ArgumentList.Add(arg);
        }

        _startedDaemon = Process.Start(info) ?? throw new PeerUnavailableException("could not start dockerd");
        for (var i = 0; i < 60; i++)
        {
            if (await ServerVersionAsync(cancellationToken) is not null)
            {
                return;
            }

            if (_startedDaemon.HasExited)
            {
                break;
            }

            await Task.Delay(500, cancellationToken);
        }

        throw new PeerUnavailableException($"dockerd did not answer within 30 s; see {DaemonLog}");
    }
}
