using System.Globalization;
using System.Net.Sockets;
using IsoTest.Engine.Native;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Networking;

/// <summary>
/// An outbound network's way out (<see cref="NetworkBuilder.WithOutboundAccess"/>), root and rootless alike: Debian's
/// slirp4netns puts a tap (<c>tap0</c>, 10.0.2.100/24, default route via 10.0.2.2) in the network's namespace and
/// carries what leaves through it on ordinary sockets of the host, opened by an unprivileged process. The namespace
/// routes its members' packets to the tap (forwarding on the bridge and the tap only) and masquerades them as the
/// tap's address (nf_tables, in that namespace). So no host interface, route, firewall rule or sysctl is touched:
/// a host's own forwarding policy (dockerd sets the FORWARD policy to DROP) does not matter, and nothing can leak
/// into the host's network. slirp4netns runs with <c>--disable-host-loopback</c>: the host's loopback stays out of
/// reach (its non-loopback addresses are reached as any other, as from Docker's non-internal networks).
/// It exits when its exit descriptor closes: on dispose, and when the engine dies, even by kill -9.
/// </summary>
internal sealed class OutboundLink : IDisposable
{
    /// <summary>The Debian package that provides it, named in errors.</summary>
    public const string Package = "slirp4netns";

    private const string Tap = "tap0";
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(15);

    private readonly int _pid;
    private readonly SafeFileHandle _exit;
    private readonly string _logPath;

    private OutboundLink(int pid, SafeFileHandle exit, string logPath)
    {
        (_pid, _exit, _logPath) = (pid, exit, logPath);
    }

    /// <summary>The slirp4netns process, for tests that check it goes.</summary>
    internal int Pid => _pid;

    /// <summary>The slirp4netns on PATH (or Debian's /usr/bin), or null when it is not installed.</summary>
    public static string? Find(string? path)
    {
        var directories = (path ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries).Append("/usr/bin").Append("/usr/local/bin");
        return directories.Select(d => Path.Combine(d, Package)).FirstOrDefault(File.Exists);
    }

    /// <summary>
    /// Connects the network namespace <paramref name="netns"/> (its bridge <paramref name="bridgeIndex"/>) to the outside.
    /// Rootless, <paramref name="userns"/> is the user namespace owning it, which slirp4netns joins to make its tap.
    /// </summary>
    /// <exception cref="NativeException">The kernel refused a step, or slirp4netns did not come up (its words are in the message).</exception>
    public static OutboundLink Start(string binary, SafeFileHandle netns, SafeFileHandle? userns, Netlink netlink, Netlink netfilter, int bridgeIndex, string logPath)
    {
        netlink.SetForwarding(bridgeIndex);
        netfilter.Masquerade(Tap);

        var (exitOurs, exitTheirs) = Fd.StreamPair();
        var (readyOurs, readyTheirs) = Fd.StreamPair();
        using var devNull = Fd.OpenDevNull();
        using var log = File.OpenHandle(logPath, FileMode.Create, FileAccess.Write);
        // Descriptors 3-6 in the child, named to slirp4netns by number: it opens the namespaces through /proc/self/fd.
        var arguments = new List<string>
        {
            "--configure", $"--mtu={EngineNetworks.Mtu.ToString(CultureInfo.InvariantCulture)}", "--disable-host-loopback", "--enable-seccomp",
            "--exit-fd=3", "--ready-fd=4", "--netns-type=path",
        };
        if (userns is not null)
        {
            arguments.Add("--userns-path=/proc/self/fd/6");
        }

        arguments.AddRange(["/proc/self/fd/5", Tap]);
        int pid;
        try
        {
            pid = AgentProcess.Spawn(binary, userns is null ? [devNull, devNull, log, exitTheirs, readyTheirs, netns] : [devNull, devNull, log, exitTheirs, readyTheirs, netns, userns], arguments);
        }
        finally
        {
            exitTheirs.Dispose();
            readyTheirs.Dispose();
        }

        var link = new OutboundLink(pid, exitOurs, logPath);
        try
        {
            using var ready = Fd.ToSocket(readyOurs);
            ready.ReceiveTimeout = (int)ReadyTimeout.TotalMilliseconds;
            var one = new byte[1];
            int n;
            try
            {
                n = ready.Receive(one);
            }
            catch (SocketException)
            {
                throw Errors.TimedOut($"{Package} did not say it was ready within {ReadyTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s{link.Said()}");
            }

            if (n != 1)
            {
                throw Errors.ProcessGone($"{Package} exited before its tap was up{link.Said()}");
            }

            netlink.SetForwarding(netlink.IndexOf(Tap));
            return link;
        }
        catch
        {
            link.Dispose();
            throw;
        }
    }

    /// <summary>Stops slirp4netns and reaps it; its tap goes with it.</summary>
    public void Dispose()
    {
        if (_exit.IsClosed)
        {
            return;
        }

        _exit.Dispose();
        using (var process = ProcessHandle.TryOpen(_pid))
        {
            process?.Kill();
        }

        AgentProcess.Reap(_pid);
        File.Delete(_logPath);
    }

    /// <summary>What slirp4netns wrote to stderr, for an error message.</summary>
    private string Said()
    {
        try
        {
            var text = File.ReadAllText(_logPath).Trim();
            return text.Length == 0 ? string.Empty : $" (it said: {string.Join(" | ", text.Split('\n').TakeLast(5))})";
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }
}
