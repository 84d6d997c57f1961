using System.Diagnostics;
using System.Text.Json;

namespace IsoTest.Bench.Peers;

/// <summary>
/// <c>crun run</c> (Debian's crun) on an OCI bundle whose root is the host's <c>/</c>, read-only:
/// the same work as IsoTest's host root filesystem, done by the fastest OCI runtime there is.
/// </summary>
/// <remarks>
/// Two things stand between Debian's crun 1.8 and this machine, both found by trying:
/// <list type="number">
/// <item>On a hybrid cgroup host it refuses to run ("cgroups in hybrid mode not supported, drop all
/// controllers from cgroupv2") when the v2 hierarchy at <c>/sys/fs/cgroup/unified</c> has a controller
/// enabled (hugetlb here). Disabling it would change the host for everyone; instead crun runs in a
/// private mount namespace where that mount is unmounted, so it sees plain cgroup v1.</item>
/// <item>With <c>root.path</c> = <c>/</c> its <c>pivot_root</c> fails with EBUSY (the new root is the
/// current root). A bind mount of <c>/</c> onto the bundle's <c>rootfs/</c> (non-recursive: crun mounts
/// /proc, /dev, /sys itself) is the same tree under another path, and works.</item>
/// </list>
/// A .NET process cannot enter a new mount namespace itself (<c>unshare(CLONE_NEWNS)</c> fails in a
/// multi-threaded process), and <c>unshare -m sh -c 'umount ...; crun run'</c> per cycle would add an
/// unshare + shell + umount to crun's time. So one long-lived shell is started in the private
/// namespace, and each cycle asks it to run one <c>crun run</c>: the time measured is a pipe round trip
/// plus the shell's fork+exec of crun plus everything crun does. Both mounts vanish with that shell.
/// </remarks>
internal sealed class CrunPeer : IPeer
{
    private const string DriverScript = """
        set -e
        if [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ] && mountpoint -q /sys/fs/cgroup/unified; then
            umount /sys/fs/cgroup/unified
        fi
        mount --bind / "$1/rootfs"
        echo ready
        set +e
        while read -r id; do
            crun run --bundle "$1" "$id" </dev/null >/dev/null 2>>"$1/crun.log"
            echo "$?"
        done
        """;

    private string? _bundle;
    private Process? _driver;
    private int _cycles;
    private string _version = "crun";

    public string Name => "crun run";

    public string Notes => $"{_version}; OCI bundle: host / read-only, pid/net/ipc/uts/mount namespaces, /tmp tmpfs; from a shell in a private mount namespace (see CrunPeer.cs)";

    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        if (Shell.Which("crun") is null)
        {
            throw new PeerUnavailableException("crun not found: apt-get install crun");
        }

        if (!Environment.IsPrivilegedProcess)
        {
            throw new PeerUnavailableException("crun needs root here (no rootless cgroup delegation): run the bench as root");
        }

        if (Shell.Which("unshare") is null)
        {
            throw new PeerUnavailableException("unshare not found: apt-get install util-linux");
        }

        var version = await Shell.RunAsync("crun", ["--version"], cancellationToken: cancellationToken);
        _version = version.Stdout.Split('\n')[0].Trim();

        _bundle = Directory.CreateTempSubdirectory("isotest-bench-crun-").FullName;
        Directory.CreateDirectory(Path.Combine(_bundle, "rootfs"));
        await File.WriteAllTextAsync(Path.Combine(_bundle, "config.json"), BundleConfig(), cancellationToken);

        var info = new ProcessStartInfo("unshare")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--mount", "--propagation", "private", "/bin/sh", "-c", DriverScript, "sh", _bundle })
        {
            info.ArgumentList.Add(arg);
        }

        _driver = Process.Start(info) ?? throw new PeerUnavailableException("could not start unshare");
        _driver.StandardInput.AutoFlush = true;
        var ready = await _driver.StandardOutput.ReadLineAsync(cancellationToken);
        if (ready != "ready")
        {
            var error = await _driver.StandardError.ReadToEndAsync(cancellationToken);
            throw new PeerUnavailableException($"could not set up crun's private mount namespace: {error.Trim()}");
        }
    }

    public async Task CycleAsync(CancellationToken cancellationToken)
    {
        var driver = _driver ?? throw new InvalidOperationException("not prepared");
        var id = $"isotest-bench-{Environment.ProcessId}-{_cycles++}";
        await driver.StandardInput.WriteLineAsync(id.AsMemory(), cancellationToken);
        var reply = await driver.StandardOutput.ReadLineAsync(cancellationToken);
        if (reply != "0")
        {
            var log = Path.Combine(_bundle!, "crun.log");
            var tail = File.Exists(log) ? string.Join(" | ", File.ReadLines(log).TakeLast(3)) : "";
            throw new InvalidOperationException($"crun run {id} exited with {reply ?? "nothing (driver gone)"}: {tail}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_driver is not null)
        {
            // End of input ends the loop; the shell exits and its mount namespace (with both mounts) goes.
            await Shell.EndDriverAsync(_driver);
        }

        if (_bundle is not null)
        {
            Directory.Delete(_bundle, recursive: true);
        }
    }

    /// <summary>The OCI runtime config: what `crun spec` writes, with IsoTest's caps and a read-only host root.</summary>
    private static string BundleConfig()
    {
        string[] caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
        var config = new
        {
            ociVersion = "1.0.0",
            process = new
            {
                terminal = false,
                user = new { uid = 0, gid = 0 },
                args = new[] { "/bin/true" },
                env = new[] { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
                cwd = "/",
                capabilities = new { bounding = caps, effective = caps, permitted = caps, ambient = caps },
                rlimits = new[] { new { type = "RLIMIT_NOFILE", hard = 1024, soft = 1024 } },
                noNewPrivileges = true,
            },
            root = new { path = "rootfs", @readonly = true },
            hostname = "crun",
            mounts = new object[]
            {
                new { destination = "/proc", type = "proc", source = "proc" },
                new { destination = "/dev", type = "tmpfs", source = "tmpfs", options = new[] { "nosuid", "strictatime", "mode=755", "size=65536k" } },
                new { destination = "/dev/pts", type = "devpts", source = "devpts", options = new[] { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620" } },
                new { destination = "/dev/shm", type = "tmpfs", source = "shm", options = new[] { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" } },
                new { destination = "/dev/mqueue", type = "mqueue", source = "mqueue", options = new[] { "nosuid", "noexec", "nodev" } },
                new { destination = "/sys", type = "sysfs", source = "sysfs", options = new[] { "nosuid", "noexec", "nodev", "ro" } },
                new { destination = "/tmp", type = "tmpfs", source = "tmpfs", options = new[] { "nosuid", "nodev", "mode=1777" } },
            },
            linux = new
            {
                resources = new
                {
                    devices = new[] { new { allow = false, access = "rwm" } },
                    // swap = memory: no swap on top of the cap (v1 memsw), as IsoTest does.
                    memory = new { limit = 64L << 20, swap = 64L << 20 },
                    cpu = new { quota = 50_000L, period = 100_000L },
                },
                namespaces = new[] { "pid", "network", "ipc", "uts", "mount" }.Select(t => new { type = t }),
                maskedPaths = new[] { "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/sched_debug", "/sys/firmware", "/proc/scsi" },
                readonlyPaths = new[] { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" },
            },
        };
        return JsonSerializer.Serialize(config, new JsonSerializerOptions { WriteIndented = true });
    }
}
