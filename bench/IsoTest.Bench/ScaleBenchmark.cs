using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace IsoTest.Bench;

/// <summary>
/// Many containers alive at once: the engine starts 1,000 <c>sleep 600</c> containers (host root, no
/// caps), Docker 100. Time to start them all, start rate, memory per container, teardown time.
/// </summary>
internal static class ScaleBenchmark
{
    private const double TargetRate = 200;
    private const double TargetPssKiB = 1024;
    private const int Parallelism = 8;
    private static readonly Dictionary<string, string> DockerEnv = new() { ["DOCKER_API_VERSION"] = Environment.GetEnvironmentVariable("DOCKER_API_VERSION") ?? "1.41" };

    /// <summary>How many starts one slice of the start rate covers (<see cref="SliceRates"/>).</summary>
    private const int Slice = 250;

    private sealed record Figures(int Count, double StartSeconds, double PssKiBEach, double MemAvailableKiBEach, double TeardownSeconds, string PssSource)
    {
        /// <summary>Seconds from the first start request until each container was started, in completion order.</summary>
        public double[] Completions { get; init; } = [];

        /// <summary>Where the kernel's memory went while the containers lived (null for Docker).</summary>
        public KernelMemory.Diff? Kernel { get; init; }
    }

    public static async Task<Section> RunAsync(Options options, CancellationToken cancellationToken)
    {
        var (soft, hard) = OpenFiles();
        var limits = $"RLIMIT_NOFILE soft {soft}, hard {hard}";
        // The engine processes of a split run count in PSS as a whole (their runtime included), so the figure is an upper bound.
        var loadBefore = Load.Now();
        var stealBefore = Steal.Mark();
        var started = DateTimeOffset.UtcNow;
        Console.Error.WriteLine($"scale: {limits.Trim()} (the .NET runtime raises the soft limit to the hard one at start)");
        var raised = CheckLimits(options.ScaleCount);
        var engine = await EngineAsync(options.ScaleCount, cancellationToken);
        Figures? docker = null;
        string? dockerError = null;
        try
        {
            docker = await DockerAsync(options.DockerScaleCount, cancellationToken);
        }
        catch (InvalidOperationException e)
        {
            dockerError = e.Message;
        }

        var s = new StringBuilder();
        s.AppendLine("## scale: many containers alive at once");
        s.AppendLine();
        s.AppendLine(CultureInfo.InvariantCulture,
            $"The engine starts {engine.Count:N0} containers running `sleep 600` (host root, no caps) {(Processes(engine.Count, OpenFilesLimit()) is var n && n > 1 ? $"from {n} engine processes at once (one process may hold {OpenFilesLimit():N0} descriptors, a hard limit only CAP_SYS_RESOURCE raises; the engine holds {FdsPerContainer} per container), {Parallelism / 2} starts in flight in each" : $"from one process, {Parallelism} starts in flight at a time")}; all are alive together, then all are disposed ({Parallelism} at a time). Docker: {options.DockerScaleCount} × `docker run -d --network none isotest/busybox sleep 600` ({Parallelism} CLI calls in flight), then one `docker rm -f` of all.");
        s.AppendLine("Memory per container: PSS (proportional set size, /proc/<pid>/smaps_rollup) added by the runtime's own processes while the containers live, divided by the count (engine: the bench process's growth + every isotest-init; Docker: dockerd + containerd + every containerd-shim), and the host's MemAvailable drop divided by the count (includes kernel memory: namespaces, cgroups, mounts, the payload's own pages).");
        s.AppendLine(CultureInfo.InvariantCulture, $"Run {started:yyyy-MM-dd HH:mm} UTC, load average {loadBefore} before, {Load.Now()} after; CPU steal {Steal.Since(stealBefore)}. {limits.Trim()}: the engine holds {FdsPerContainer} fds per container in the bench process. Limits this count needs: {raised}.");
        s.AppendLine();
        s.AppendLine("| runtime | containers | start all, s | start rate /s | PSS per container | MemAvailable drop per container | teardown all, s | target |");
        s.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        Row(s, "IsoTest engine", engine, $"rate ≥ {TargetRate}/s {Stats.Mark(engine.Count / engine.StartSeconds >= TargetRate)}, PSS ≤ 1 MiB {Stats.Mark(engine.PssKiBEach <= TargetPssKiB)}");
        if (docker is not null)
        {
            Row(s, "Docker (docker run -d)", docker, "");
        }
        else
        {
            s.AppendLine(CultureInfo.InvariantCulture, $"| Docker | – | – | – | – | – | – | not measured: {dockerError} |");
        }

        if (engine.Completions.Length >= 2 * Slice)
        {
            s.AppendLine();
            s.AppendLine(CultureInfo.InvariantCulture, $"Engine start rate per {Slice} containers as the count grows (starts/s; a falling rate means a start costs more the more containers are alive): {SliceRates(engine.Completions)}.");
        }

        if (engine.Kernel is { } kernel)
        {
            s.AppendLine();
            s.AppendLine(CultureInfo.InvariantCulture, $"Engine, where the memory went (growth of /proc/meminfo and /proc/slabinfo while the containers lived, per container): {kernel.Describe(engine.Count)}.");
        }

        return new Section("scale", s.ToString());
    }

    /// <summary>"412 (0–250), 380 (250–500), ...": the start rate of each slice of <see cref="Slice"/> completions.</summary>
    private static string SliceRates(double[] completions)
    {
        var parts = new List<string>();
        for (var end = Slice; end <= completions.Length; end += Slice)
        {
            var from = end == Slice ? 0 : completions[end - Slice - 1];
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{Stats.Num(Slice / (completions[end - 1] - from))} (–{end:N0})"));
        }

        return string.Join(", ", parts);
    }

    /// <summary>
    /// What <paramref name="count"/> containers need of the machine's limits, checked before the first start so a large
    /// run fails at once with the command that raises the limit, not halfway with EMFILE or EAGAIN. Each container holds
    /// <see cref="FdsPerContainer"/> descriptors in its engine's process, three processes (init, its
    /// helper and the payload), and one namespace of each kind (a network namespace from the pool among them).
    /// </summary>
    private static string CheckLimits(int count)
    {
        long Read(string path) => long.Parse(File.ReadAllText(path).Trim(), CultureInfo.InvariantCulture);
        var fds = OpenFilesLimit();
        // Descriptors are per process: a count beyond one process's limit runs in several engine processes (EngineAsync).
        var (needFds, needPids) = ((long)FdsPerContainer * PerProcess(count, fds) + 2000, 3L * count + 4000);
        var problems = new List<string>();

        foreach (var (path, fix) in new[] { ("/proc/sys/kernel/pid_max", "kernel.pid_max"), ("/proc/sys/kernel/threads-max", "kernel.threads-max") })
        {
            if (Read(path) < needPids + 10_000)
            {
                problems.Add($"{fix} {Read(path)} < {needPids + 10_000}: `sysctl -w {fix}={Math.Max(needPids * 2, 4_194_304)}` (restore it afterwards)");
            }
        }

        foreach (var kind in new[] { "net", "mnt", "pid", "uts", "ipc", "cgroup" })
        {
            if (Read($"/proc/sys/user/max_{kind}_namespaces") < count + 1000)
            {
                problems.Add($"user.max_{kind}_namespaces < {count + 1000}: `sysctl -w user.max_{kind}_namespaces={count * 2}`");
            }
        }

        if (problems.Count > 0)
        {
            throw new InvalidOperationException($"scale: {count:N0} containers need higher limits: {string.Join("; ", problems)}");
        }

        return $"{needFds:N0} descriptors per engine process (have {(fds == long.MaxValue ? "unlimited" : fds.ToString("N0", CultureInfo.InvariantCulture))}; {Processes(count, fds)} process(es)), " +
            $"~{needPids:N0} pids (pid_max {Read("/proc/sys/kernel/pid_max"):N0}), {count:N0} namespaces of each kind (max_net_namespaces {Read("/proc/sys/user/max_net_namespaces"):N0})";
    }

    /// <summary>
    /// Descriptors the engine holds per live container: the control socket, stdout and stderr (socket pairs), and the
    /// agent's pidfd. Counted in /proc/PID/fd of the bench at 400 and 1,000 alive (1,202 sockets + 403 anon inodes;
    /// 4,086 in all); with 3 assumed here a 10,000 run split into two processes of 5,000 ran out (EMFILE) at ~4,900.
    /// </summary>
    private const int FdsPerContainer = 4;

    /// <summary>How many engine processes <paramref name="count"/> containers need under a descriptor limit of <paramref name="fds"/>.</summary>
    private static int Processes(int count, long fds) => (int)Math.Max(1, Math.Ceiling((double)FdsPerContainer * count / Math.Max(1000, fds - 2000)));

    private static int PerProcess(int count, long fds) => (int)Math.Ceiling((double)count / Processes(count, fds));

    private static long OpenFilesLimit() =>
        OpenFiles().Soft is var soft && soft == "unlimited" ? long.MaxValue : long.Parse(soft, CultureInfo.InvariantCulture);

    /// <summary>This process's RLIMIT_NOFILE as /proc/self/limits gives it (the .NET runtime raised soft to hard at start).</summary>
    private static (string Soft, string Hard) OpenFiles()
    {
        var fields = File.ReadAllLines("/proc/self/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return (fields[3], fields[4]);
    }

    private static void Row(StringBuilder s, string name, Figures f, string target) =>
        s.AppendLine(CultureInfo.InvariantCulture,
            $"| {name} | {f.Count:N0} | {Stats.Num(f.StartSeconds)} | {Stats.Num(f.Count / f.StartSeconds)} | {Stats.Num(f.PssKiBEach)} KiB | {Stats.Num(f.MemAvailableKiBEach)} KiB | {Stats.Num(f.TeardownSeconds)} | {target} |");

    /// <summary>
    /// The engine's figures: in this process, or, when one process's descriptor limit cannot hold <paramref name="count"/>
    /// containers (a hard limit only CAP_SYS_RESOURCE may raise), in several engine processes of this program at once,
    /// as parallel test processes would run them, each starting its share.
    /// </summary>
    private static Task<Figures> EngineAsync(int count, CancellationToken cancellationToken) =>
        Processes(count, OpenFilesLimit()) is var n && n > 1 ? EngineProcessesAsync(count, n, cancellationToken) : InProcessAsync(count, cancellationToken);

    private static async Task<Figures> InProcessAsync(int count, CancellationToken cancellationToken)
    {
        await using var backend = IsoTest.Engine.EngineBackend.Create();
        var builder = new ContainerBuilder().FromHost().WithCommand("sleep", "600").WithBackend(backend);
        // Warm the path (JIT, agent binary in page cache) so the figures are about containers, not start-up.
        await (await builder.StartAsync(cancellationToken)).DisposeAsync();
        Settle();
        var pssBefore = Pss(Environment.ProcessId);
        var kernelBefore = KernelMemory.Read();
        var containers = new ConcurrentBag<IContainer>();
        var completions = new Completions(count);
        try
        {
            await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = cancellationToken }, async (i, token) =>
            {
                containers.Add(await builder.StartAsync(token));
                if (completions.Add() is var done && done % Slice == 0)
                {
                    Console.Error.WriteLine($"  scale: {done} engine containers, {completions.RateOfLast(Slice):F0}/s over the last {Slice}");
                }
            });
            var startSeconds = completions.Elapsed;
            await Task.Delay(1000, cancellationToken);
            var inits = Processes("isotest-init");
            var pss = Pss(Environment.ProcessId) - pssBefore + inits.Sum(Pss);
            var kernel = KernelMemory.Read().Since(kernelBefore);
            Console.Error.WriteLine($"  scale: {containers.Count} alive, {inits.Count} isotest-init processes");
            var sw = Stopwatch.StartNew();
            await DisposeAllAsync(containers);
            var teardown = sw.Elapsed.TotalSeconds;
            return new Figures(count, startSeconds, pss / count, kernel.MemAvailableDropKiB / count, teardown, "bench process + isotest-init")
            {
                Completions = completions.Times(),
                Kernel = kernel,
            };
        }
        finally
        {
            // On failure or Ctrl-C: whatever was started goes too (PDEATHSIG would take the processes, not the cgroups).
            await DisposeAllAsync(containers);
        }
    }

    /// <summary>The hidden subcommand an engine process of a split run executes: <c>scale-driver COUNT</c>.</summary>
    public const string DriverCommand = "scale-driver";

    /// <summary>The line an engine process of a split run sends before "started": when each of its containers was started.</summary>
    private const string TimesPrefix = "times ";

    private static async Task<Figures> EngineProcessesAsync(int count, int processes, CancellationToken cancellationToken)
    {
        var program = typeof(ScaleBenchmark).Assembly.Location;
        var shares = Enumerable.Range(0, processes).Select(i => count / processes + (i < count % processes ? 1 : 0)).ToArray();
        Console.Error.WriteLine($"  scale: {count:N0} containers need more descriptors than one process may hold: {processes} engine processes ({string.Join(" + ", shares)})");
        Settle();
        var kernelBefore = KernelMemory.Read();
        var drivers = new List<Process>();
        try
        {
            var sw = Stopwatch.StartNew();
            foreach (var share in shares)
            {
                var info = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
                foreach (var arg in new[] { "exec", program, DriverCommand, share.ToString(CultureInfo.InvariantCulture) })
                {
                    info.ArgumentList.Add(arg);
                }

                drivers.Add(Process.Start(info) ?? throw new InvalidOperationException("could not start an engine process"));
            }

            // Each says "ready" (engine up, warmed) and then "started" once its share is alive.
            foreach (var driver in drivers)
            {
                Expect(await driver.StandardOutput.ReadLineAsync(cancellationToken), "ready");
            }

            var startBase = sw.Elapsed.TotalSeconds; // engine processes' own start-up, not counted
            foreach (var driver in drivers)
            {
                await driver.StandardInput.WriteLineAsync("start".AsMemory(), cancellationToken);
                await driver.StandardInput.FlushAsync(cancellationToken);
            }

            // Each says when each of its containers was started (seconds since its "start"), then "started".
            var times = new List<double>();
            foreach (var driver in drivers)
            {
                var line = await driver.StandardOutput.ReadLineAsync(cancellationToken);
                if (line?.StartsWith(TimesPrefix, StringComparison.Ordinal) != true)
                {
                    Expect(line, TimesPrefix + "...");
                }

                times.AddRange(line![TimesPrefix.Length..].Split(',', StringSplitOptions.RemoveEmptyEntries).Select(t => double.Parse(t, CultureInfo.InvariantCulture)));
                Expect(await driver.StandardOutput.ReadLineAsync(cancellationToken), "started");
            }

            var startSeconds = sw.Elapsed.TotalSeconds - startBase;
            await Task.Delay(1000, cancellationToken);
            var inits = Processes("isotest-init");
            var pss = drivers.Sum(d => Pss(d.Id)) + inits.Sum(Pss);
            var kernel = KernelMemory.Read().Since(kernelBefore);
            Console.Error.WriteLine($"  scale: {count:N0} alive in {processes} processes, {inits.Count} isotest-init processes");
            sw.Restart();
            foreach (var driver in drivers)
            {
                driver.StandardInput.Close(); // end of input: dispose everything and exit
            }

            foreach (var driver in drivers)
            {
                await driver.WaitForExitAsync(cancellationToken);
            }

            return new Figures(count, startSeconds, pss / count, kernel.MemAvailableDropKiB / count, sw.Elapsed.TotalSeconds,
                $"{processes} engine processes + isotest-init (the engine processes' own ~30 MiB each counted in)")
            {
                Completions = [.. times.Order()],
                Kernel = kernel,
            };
        }
        finally
        {
            foreach (var driver in drivers)
            {
                if (!driver.HasExited && cancellationToken.IsCancellationRequested)
                {
                    // Ctrl-C: a driver notices its closed input only once its whole share is started (it went on
                    // starting thousands more, with the memory nearly gone, in the run of 2026-12-02 18:36).
                    // Killed, its containers die with it (PDEATHSIG); the next engine's sweep takes their cgroups.
                    driver.Kill(entireProcessTree: true);
                }
                else if (!driver.HasExited)
                {
                    driver.StandardInput.Close();
                    using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
                    try
                    {
                        await driver.WaitForExitAsync(timeout.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        driver.Kill(entireProcessTree: true); // its containers die with it; the next engine's sweep takes their cgroups
                    }
                }

                driver.Dispose();
            }
        }

        static void Expect(string? line, string expected)
        {
            if (line != expected)
            {
                throw new InvalidOperationException($"an engine process of the scale run said '{line ?? "(it exited)"}' instead of '{expected}'");
            }
        }
    }

    /// <summary>An engine process of a split run: "ready", then on "start" its containers and "started"; on end of input it removes them and exits.</summary>
    public static async Task<int> DriveAsync(int count)
    {
        await using var backend = IsoTest.Engine.EngineBackend.Create();
        var builder = new ContainerBuilder().FromHost().WithCommand("sleep", "600").WithBackend(backend);
        await (await builder.StartAsync()).DisposeAsync();
        Console.WriteLine("ready");
        if (await Console.In.ReadLineAsync() != "start")
        {
            return 1;
        }

        var containers = new ConcurrentBag<IContainer>();
        var completions = new Completions(count);
        try
        {
            // Fewer in flight per process: the processes start theirs at the same time on the same cores.
            await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(2, Parallelism / 2) }, async (_, token) =>
            {
                containers.Add(await builder.StartAsync(token));
                if (completions.Add() is var done && done % Slice == 0)
                {
                    Console.Error.WriteLine($"  scale: {done} in engine process {Environment.ProcessId}, {completions.RateOfLast(Slice):F0}/s over the last {Slice}");
                }
            });
            Console.WriteLine(TimesPrefix + string.Join(',', completions.Times().Select(t => t.ToString("F4", CultureInfo.InvariantCulture))));
            Console.WriteLine("started");
            while (await Console.In.ReadLineAsync() is not null)
            {
            }
        }
        finally
        {
            await DisposeAllAsync(containers);
        }

        return 0;
    }

    private static async Task DisposeAllAsync(ConcurrentBag<IContainer> containers)
    {
        var all = new List<IContainer>();
        while (containers.TryTake(out var c))
        {
            all.Add(c);
        }

        await Parallel.ForEachAsync(all, new ParallelOptions { MaxDegreeOfParallelism = Parallelism }, async (c, _) => await c.DisposeAsync());
    }

    private static async Task<Figures> DockerAsync(int count, CancellationToken cancellationToken)
    {
        if ((await Shell.RunAsync("docker", ["version", "--format", "{{.Server.Version}}"], DockerEnv, cancellationToken)).ExitCode != 0)
        {
            throw new InvalidOperationException("no Docker daemon answers: run .ci/docker-setup.sh");
        }

        string[] daemons = ["dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2"];
        Settle();
        var pssBefore = daemons.SelectMany(Processes).Sum(Pss);
        var availableBefore = MemAvailableKiB();
        var ids = new ConcurrentBag<string>();
        var sw = Stopwatch.StartNew();
        try
        {
            await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = cancellationToken }, async (i, token) =>
            {
                var run = await Shell.RunAsync("docker", ["run", "-d", "--label", "isotest-bench=1", "--network", "none", "isotest/busybox:latest", "sleep", "600"], DockerEnv, token);
                if (run.ExitCode != 0)
                {
                    throw new InvalidOperationException($"docker run exited with {run.ExitCode}: {run.Tail}");
                }

                ids.Add(run.Stdout.Trim());
            });
            var startSeconds = sw.Elapsed.TotalSeconds;
            await Task.Delay(1000, cancellationToken);
            var pss = daemons.SelectMany(Processes).Sum(Pss) - pssBefore;
            var available = availableBefore - MemAvailableKiB();
            sw.Restart();
            await RemoveAsync(ids);
            return new Figures(count, startSeconds, pss / count, available / count, sw.Elapsed.TotalSeconds, "dockerd + containerd + shims");
        }
        finally
        {
            await RemoveAsync(ids);
        }
    }

    private static async Task RemoveAsync(ConcurrentBag<string> ids)
    {
        var all = new List<string>();
        while (ids.TryTake(out var id))
        {
            all.Add(id);
        }

        if (all.Count > 0)
        {
            await Shell.RunAsync("docker", ["rm", "-f", .. all], DockerEnv, CancellationToken.None);
        }
    }

    /// <summary>Lets the garbage collector and the kernel's deferred frees settle before a memory reading.</summary>
    private static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Thread.Sleep(500);
    }

    private static List<int> Processes(string comm)
    {
        var pids = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                try
                {
                    if (File.ReadAllText(Path.Combine(dir, "comm")).Trim() == comm)
                    {
                        pids.Add(pid);
                    }
                }
                catch (IOException)
                {
                }
            }
        }

        return pids;
    }

    /// <summary>The process's proportional set size in KiB (0 when it is gone).</summary>
    private static double Pss(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/smaps_rollup").FirstOrDefault(l => l.StartsWith("Pss:", StringComparison.Ordinal));
            return line is null ? 0 : double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static double MemAvailableKiB() =>
        double.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    /// <summary>When each container of a run was started (seconds since the first request), in completion order.</summary>
    private sealed class Completions(int count)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly double[] _times = new double[count];
        private int _done;

        public double Elapsed => _clock.Elapsed.TotalSeconds;

        /// <summary>Records one start; returns how many are done.</summary>
        public int Add()
        {
            var done = Interlocked.Increment(ref _done);
            _times[done - 1] = _clock.Elapsed.TotalSeconds;
            return done;
        }

        /// <summary>Starts per second over the last <paramref name="n"/> (a slot a racing Add has not written yet reads 0: a progress line only).</summary>
        public double RateOfLast(int n)
        {
            var done = Volatile.Read(ref _done);
            var from = done > n ? _times[done - n - 1] : 0;
            return Math.Min(n, done) / Math.Max(1e-9, _times[done - 1] - from);
        }

        public double[] Times() => [.. _times.Take(Volatile.Read(ref _done)).Order()];
    }
}
