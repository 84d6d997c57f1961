using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace IsoTest.Bench;

/// <summary>
/// What joining a user-defined network costs a container start: create + start + exit + remove of <c>/bin/true</c> on the
/// private default network next to the same container joined to one network (a veth pair, its addresses, the member's
/// hosts files), alternating so both see the same machine.
/// </summary>
internal static class NetworkBenchmark
{
    private const double TargetMs = 1.0;

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
        return new Section("network", s.ToString());
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
