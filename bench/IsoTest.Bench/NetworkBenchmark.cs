using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace IsoTest.Bench;

/// <summary>
/// What joining a user-defined network costs a container start: create + start + exit + remove of <c>/bin/true</c> on the
/// private default network next to the same container joined to one network (a veth pair, its addresses, the member's
/// hosts files), alternating so both see the same machine. Then throughput: one member to another across the network's
/// bridge, against loopback inside one container, and an outbound member to the host through slirp4netns.
/// </summary>
internal static class NetworkBenchmark
{
    private const double TargetMs = 1.0;
    private const int TransferMiB = 256;
    private const int SinkPort = 9100;

    public static async Task<Section> RunAsync(Options options, CancellationToken cancellationToken)
    {
        var loadBefore = Load.Now();
        var stealBefore = Steal.Mark();
        var started = DateTimeOffset.UtcNow;
        await using var backend = IsoTest.Engine.EngineBackend.Create();
        await using var network = await new NetworkBuilder().WithName("bench-nw-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture)).WithBackend(backend).BuildAsync(cancellationToken);
        var plain = new ContainerBuilder().FromHost().WithCommand("/bin/true").WithBackend(backend);
        var joined = plain.WithNetwork(network).WithNetworkAliases("bench");

        var privateMs = new List<double>();
        var networkMs = new List<double>();
        for (var i = -options.Warmup; i < options.Count; i++)
        {
            var a = await CycleAsync(plain, cancellationToken);
            var b = await CycleAsync(joined, cancellationToken);
            if (i >= 0)
            {
                privateMs.Add(a);
                networkMs.Add(b);
            }
        }

        var p = Summary.Of(privateMs);
        var n = Summary.Of(networkMs);
        var extra = n.Median - p.Median;
        var s = new StringBuilder();
        s.AppendLine("## network: a container start joining a network vs the private default");
        s.AppendLine();
        s.AppendLine(CultureInfo.InvariantCulture,
            $"Engine, {(Environment.UserName == "root" ? "root" : "rootless")}: create + start + wait for exit + remove of `/bin/true` (host root), {options.Count} rounds after {options.Warmup} warm-up, the two alternating; milliseconds.");
        s.AppendLine(CultureInfo.InvariantCulture, $"Run {started:yyyy-MM-dd HH:mm} UTC, load average {loadBefore} before, {Load.Now()} after; CPU steal {Steal.Since(stealBefore)}.");
        s.AppendLine();
        s.AppendLine("| container | median ms | p90 | min – max | target |");
        s.AppendLine("| --- | ---: | ---: | ---: | --- |");
        s.AppendLine(CultureInfo.InvariantCulture, $"| private default network | {Stats.Cells(p)} | |");
        s.AppendLine(CultureInfo.InvariantCulture, $"| on one user-defined network (alias, hosts files) | {Stats.Cells(n)} | within {TargetMs} ms of the private default: +{Stats.Num(extra)} ms {Stats.Mark(extra <= TargetMs)} |");
        s.AppendLine();
        s.Append(await ThroughputAsync(backend, network, options, cancellationToken));
        return new Section("network", s.ToString());
    }

    /// <summary>
    /// <c>dd</c> writes <see cref="TransferMiB"/> MiB into bash's <c>/dev/tcp</c> towards a sink (<c>busybox nc -ll -e dd
    /// of=/dev/null bs=1M</c>), and reports its rate: loopback inside the sink's container, from another member across the
    /// bridge, from a member of an outbound network to a sink on the host's own address (through slirp4netns), and the
    /// host's loopback without containers. Alternating rounds, so every path sees the same machine.
    /// </summary>
    private static async Task<string> ThroughputAsync(IsoTest.Engine.EngineBackend backend, INetwork network, Options options, CancellationToken cancellationToken)
    {
        var rounds = options.Quick ? 3 : 7;
        var loadBefore = Load.Now();
        var stealBefore = Steal.Mark();
        var started = DateTimeOffset.UtcNow;
        string[] sink = ["busybox", "nc", "-ll", "-p", SinkPort.ToString(CultureInfo.InvariantCulture), "-e", "dd", "of=/dev/null", "bs=1M"];
        await using var outbound = await new NetworkBuilder().WithOutboundAccess().WithBackend(backend).BuildAsync(cancellationToken);
        await using var server = await new ContainerBuilder().FromHost().WithCommand(sink).WithNetwork(network).WithNetworkAliases("sink")
            .WithBackend(backend).StartAsync(cancellationToken);
        await using var client = await new ContainerBuilder().FromHost().WithCommand("sleep", "3600").WithNetwork(network).WithBackend(backend).StartAsync(cancellationToken);
        await using var outside = await new ContainerBuilder().FromHost().WithCommand("sleep", "3600").WithNetwork(outbound).WithBackend(backend).StartAsync(cancellationToken);
        var hostAddress = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .Where(i => i.NetworkInterfaceType != System.Net.NetworkInformation.NetworkInterfaceType.Loopback && i.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Up)
            .SelectMany(i => i.GetIPProperties().UnicastAddresses).Select(a => a.Address)
            .First(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);
        using var hostSink = Process.Start(new ProcessStartInfo("busybox", sink[1..]) { UseShellExecute = false, RedirectStandardError = true })
            ?? throw new InvalidOperationException("could not start busybox nc on the host");
        try
        {
            var loopback = new List<double>();
            var bridge = new List<double>();
            var slirp = new List<double>();
            var host = new List<double>();
            for (var i = 0; i < rounds; i++)
            {
                loopback.Add(await SendAsync(server, "127.0.0.1", cancellationToken));
                bridge.Add(await SendAsync(client, "sink", cancellationToken));
                slirp.Add(await SendAsync(outside, hostAddress.ToString(), cancellationToken));
                host.Add(await SendOnHostAsync(cancellationToken));
                Console.Error.WriteLine($"  network: transfer {i + 1}/{rounds}: loopback {loopback[^1]:0} MiB/s, bridge {bridge[^1]:0} MiB/s, slirp4netns {slirp[^1]:0} MiB/s, host loopback {host[^1]:0} MiB/s");
            }

            var s = new StringBuilder();
            s.AppendLine("### network: throughput between two members vs loopback inside one container");
            s.AppendLine();
            s.AppendLine(CultureInfo.InvariantCulture,
                $"`dd if=/dev/zero bs=1M count={TransferMiB} > /dev/tcp/HOST/{SinkPort}` (bash) into `busybox nc -ll -e dd of=/dev/null bs=1M`, {rounds} rounds, the paths alternating; MiB/s as dd reports it; ratio = the path's median over loopback's inside one container.");
            s.AppendLine(CultureInfo.InvariantCulture, $"Run {started:yyyy-MM-dd HH:mm} UTC, load average {loadBefore} before, {Load.Now()} after; CPU steal {Steal.Since(stealBefore)}.");
            s.AppendLine();
            s.AppendLine("| path | median MiB/s | p90 | min – max | ratio to loopback in one container |");
            s.AppendLine("| --- | ---: | ---: | ---: | ---: |");
            var baseline = Summary.Of(loopback).Median;
            foreach (var (name, values) in new[]
            {
                ("loopback inside one container", loopback),
                ("member → member across the network's bridge (veth, bridge, veth)", bridge),
                ("outbound member → the host's own address (bridge, nf_tables masquerade, slirp4netns)", slirp),
                ("host loopback, no container (reference)", host),
            })
            {
                var v = Summary.Of(values);
                s.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {Stats.Cells(v)} | {Stats.Num(v.Median / baseline)} |");
            }

            return s.ToString();
        }
        finally
        {
            hostSink.Kill();
            await hostSink.WaitForExitAsync(CancellationToken.None);
        }
    }

    private static async Task<double> SendAsync(IContainer from, string host, CancellationToken cancellationToken)
    {
        var result = await from.ExecAsync(["bash", "-c", DdTo(host)], cancellationToken);
        return DdRate(result.ExitCode, result.Stderr, host);
    }

    private static async Task<double> SendOnHostAsync(CancellationToken cancellationToken)
    {
        using var dd = Process.Start(new ProcessStartInfo("bash", ["-c", DdTo("127.0.0.1")]) { RedirectStandardError = true, UseShellExecute = false })
            ?? throw new InvalidOperationException("could not start bash");
        var stderr = await dd.StandardError.ReadToEndAsync(cancellationToken);
        await dd.WaitForExitAsync(cancellationToken);
        return DdRate(dd.ExitCode, stderr, "the host's loopback");
    }

    /// <summary>Connects (retrying while the sink starts: nothing is published, so no port wait applies), then writes.</summary>
    private static string DdTo(string host) =>
        $"for i in $(seq 50); do {{ exec 3>/dev/tcp/{host}/{SinkPort}; }} 2>/dev/null && break; sleep 0.1; done; dd if=/dev/zero bs=1M count={TransferMiB} >&3";

    /// <summary>MiB/s from dd's last line: "268435456 bytes (268 MB, 256 MiB) copied, 0.18 s, 1.4 GB/s".</summary>
    private static double DdRate(int exitCode, string stderr, string host)
    {
        var last = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? string.Empty;
        var parts = last.Split(", ");
        if (exitCode != 0 || parts.Length < 3 || !long.TryParse(last.Split(' ')[0], NumberStyles.None, CultureInfo.InvariantCulture, out var bytes)
            || !double.TryParse(parts[^2].Split(' ')[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || seconds <= 0)
        {
            throw new InvalidOperationException($"dd to {host} failed (exit {exitCode}): {stderr}");
        }

        return bytes / (1024.0 * 1024.0) / seconds;
    }

    private static async Task<double> CycleAsync(ContainerBuilder builder, CancellationToken cancellationToken)
    {
        var sw = Stopwatch.StartNew();
        await using (var container = await builder.StartAsync(cancellationToken))
        {
            var exit = await container.WaitForExitAsync(cancellationToken);
            if (exit != 0)
            {
                throw new InvalidOperationException($"/bin/true exited {exit} in {container.Name}");
            }
        }

        return sw.Elapsed.TotalMilliseconds;
    }
}
