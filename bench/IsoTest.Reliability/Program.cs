using System.Diagnostics;
using System.Globalization;
using IsoTest;
using IsoTest.Engine;

namespace IsoTest.Reliability;

/// <summary>
/// Reliability programs (issue 8), not unit tests: they print figures and assert nothing.
///   soak [cycles]              create/start/exit/remove cycles; engine fds, RSS, threads, cgroup dirs, mounts and
///                              state entries sampled every 1,000 (default 10,000 cycles)
///   kill9 [rounds] [count]     kill -9 of an owner holding COUNT running containers, ROUNDS times; what is left once
///                              the next engine started (default 20 x 50)
///   fuzz [inputs]              random and mutated builder input and seccomp JSON: every input must give a spec or
///                              InvalidContainerSpecException, nothing else (default 100,000)
///   serve-fuzz [inputs] [seed] fuzzed HTTP against a real `isotest serve` (tests/Shared/ApiFuzzer.cs): it must answer
///                              /_ping after every batch, word every 5xx, leave nothing half-made (default 20,000, seed 1)
/// Run as root from the repository root: dotnet run -c Release --project bench/IsoTest.Reliability -- soak
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], CultureInfo.InvariantCulture) : fallback;
        switch (args.FirstOrDefault())
        {
            case "soak":
                await Soak(Arg(1, 10_000));
                return 0;
            case "kill9":
                return await Kill9(Arg(1, 20), Arg(2, 50));
            case "fuzz":
                return Fuzz.Run(Arg(1, 100_000));
            case "serve-fuzz":
                return await ServeFuzz(Arg(1, 20_000), Arg(2, 1));
            default:
                Console.Error.WriteLine("usage: IsoTest.Reliability soak [cycles] | kill9 [rounds] [containers] | fuzz [inputs] | serve-fuzz [inputs] [seed]");
                return 2;
        }
    }

    private static async Task<int> ServeFuzz(int inputs, int seed)
    {
        await using var serve = await TestSupport.ServeProcess.StartAsync();
        Console.WriteLine($"serve-fuzz: {inputs:N0} inputs, seed {seed}, against isotest serve (pid {serve.Id}) on {serve.Socket}");
        var clock = Stopwatch.StartNew();
        var report = await new TestSupport.ApiFuzzer(serve.Socket, seed).RunAsync(inputs, () => !serve.HasExited, Console.Out);
        var exit = await serve.StopAsync(TimeSpan.FromSeconds(30));
        Console.WriteLine($"serve-fuzz: {report} ({clock.Elapsed.TotalSeconds:F0} s)");
        foreach (var failure in report.Failures)
        {
            Console.WriteLine("  FAIL " + failure);
        }

        Console.WriteLine($"serve-fuzz: isotest serve exited {exit?.ToString(CultureInfo.InvariantCulture) ?? "only when killed"} on SIGTERM, socket {(File.Exists(serve.Socket) ? "left behind" : "removed")}");
        return report.Failures.Count == 0 && exit == 0 && !File.Exists(serve.Socket) ? 0 : 1;
    }

    private static async Task Soak(int cycles)
    {
        await using var engine = new EngineBackend();
        var spec = new ContainerSpec { RootFileSystem = RootFileSystem.Host, Command = ["/bin/true"], Limits = new ResourceLimits(MemoryBytes: 64L << 20, Pids: 64) };
        Console.WriteLine($"soak: {cycles} create/start/exit/remove cycles of a capped /bin/true container, sampled every 1,000");
        Console.WriteLine(Sample.Header);
        Console.WriteLine(Sample.Take(0));
        var clock = Stopwatch.StartNew();
        for (var i = 1; i <= cycles; i++)
        {
            await using (var container = await engine.CreateAsync(spec))
            {
                await container.StartAsync();
                await container.WaitForExitAsync();
            }

            if (i % 1000 == 0 || i == cycles)
            {
                Console.WriteLine(Sample.Take(i));
            }
        }

        Console.WriteLine($"soak: {cycles} cycles in {clock.Elapsed.TotalSeconds:F1} s");
    }

    private static string OwnerInRepository()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "IsoTest.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return Path.Combine(dir ?? ".", "tests/IsoTest.Engine.Tests.Owner/bin/Release/net10.0/IsoTest.Engine.Tests.Owner.dll");
    }

    private static async Task<int> Kill9(int rounds, int count)
    {
        // The leak tests' owner program: ISOTEST_OWNER, else its build output in the repository.
        var owner = Environment.GetEnvironmentVariable("ISOTEST_OWNER") is { Length: > 0 } given ? given : OwnerInRepository();
        if (!File.Exists(owner))
        {
            Console.Error.WriteLine($"kill9: {owner} is missing: build tests/IsoTest.Engine.Tests.Owner -c Release (or set ISOTEST_OWNER to its dll).");
            return 2;
        }

        Console.WriteLine($"kill9: {rounds} rounds of kill -9 of an owner holding {count} running containers; counted after the next engine started");
        Console.WriteLine("| round | engine | started (s) | processes | cgroup dirs | mounts | state entries |");
        Console.WriteLine("| ---: | --- | ---: | ---: | ---: | ---: | ---: |");
        var totals = new int[4];
        for (var round = 1; round <= rounds; round++)
        {
            var psi = new ProcessStartInfo("dotnet", [owner, count.ToString(CultureInfo.InvariantCulture)]) { RedirectStandardOutput = true };
            var clock = Stopwatch.StartNew();
            using var process = Process.Start(psi)!;
            var line = await process.StandardOutput.ReadLineAsync() ?? throw new InvalidOperationException("the owner exited before it was ready");
            var engineId = line.Split(' ')[1];
            var started = clock.Elapsed.TotalSeconds;
            process.Kill(); // SIGKILL: no dispose, no ProcessExit handler
            await process.WaitForExitAsync();

            // The next engine sweeps what the dead one left; then count what is still there of it.
            await using (new EngineBackend())
            {
            }

            var left = Leftovers.Count(engineId);
            for (var i = 0; i < 4; i++)
            {
                totals[i] += left[i];
            }

            Console.WriteLine($"| {round} | {engineId} | {started:F1} | {left[0]} | {left[1]} | {left[2]} | {left[3]} |");
        }

        Console.WriteLine($"| total | | | {totals[0]} | {totals[1]} | {totals[2]} | {totals[3]} |");
        return totals.Sum() == 0 ? 0 : 1;
    }
}

/// <summary>The engine process's resources and the machine's IsoTest leftovers at one moment.</summary>
internal static class Sample
{
    // The managed heap (live objects after a full collection) and the GC's committed memory split RSS into what the
    // engine holds and what the runtime keeps around: a creep in RSS alone is native or runtime memory, not a leak of objects.
    public const string Header = "| cycles | open fds | RSS (MiB) | managed heap (MiB) | GC committed (MiB) | threads | cgroup dirs | mounts | state entries |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |";

    public static string Take(int cycles)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var fds = Directory.GetFiles("/proc/self/fd").Length;
        var status = File.ReadAllLines("/proc/self/status");
        long Field(string name) => long.Parse(status.Single(l => l.StartsWith(name + ":", StringComparison.Ordinal)).Split(':')[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        var heap = GC.GetTotalMemory(forceFullCollection: false) / 1048576.0;
        var committed = GC.GetGCMemoryInfo().TotalCommittedBytes / 1048576.0;
        return $"| {cycles} | {fds} | {Field("VmRSS") / 1024.0:F1} | {heap:F1} | {committed:F1} | {Field("Threads")} | {Leftovers.CgroupDirs(null)} | {File.ReadAllLines("/proc/self/mountinfo").Length} | {Leftovers.StateEntries(null)} |";
    }
}

/// <summary>What an engine (or every engine) left on the machine.</summary>
internal static class Leftovers
{
    /// <summary>processes, cgroup dirs, mounts, state entries of engine <paramref name="engineId"/>.</summary>
    public static int[] Count(string engineId) =>
        [Processes(engineId), CgroupDirs(engineId), Mounts(engineId), StateEntries(engineId)];

    public static int CgroupDirs(string? engineId)
    {
        var n = 0;
        foreach (var hierarchy in Directory.Exists("/sys/fs/cgroup") ? Directory.GetDirectories("/sys/fs/cgroup") : [])
        {
            var dir = Path.Combine(hierarchy, "isotest", engineId ?? "");
            if (Directory.Exists(dir))
            {
                n += Directory.GetDirectories(dir, "*", SearchOption.AllDirectories).Length + (engineId is null ? 0 : 1);
            }
        }

        return n;
    }

    public static int StateEntries(string? engineId)
    {
        var root = Environment.GetEnvironmentVariable("ISOTEST_STATE_DIR") is { Length: > 0 } s ? s : "/run/isotest";
        var dir = Path.Combine(root, engineId ?? "");
        return Directory.Exists(dir) ? Directory.GetFileSystemEntries(dir, "*", SearchOption.AllDirectories).Length + (engineId is null ? 0 : 1) : 0;
    }

    private static int Mounts(string engineId) =>
        File.ReadAllLines("/proc/self/mountinfo").Count(l => l.Contains(engineId, StringComparison.Ordinal) || l.Contains("isotest-", StringComparison.Ordinal));

    // Any process whose cgroup names the engine, or an init agent whose parent is gone.
    private static int Processes(string engineId)
    {
        var n = 0;
        foreach (var dir in Directory.GetDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "cgroup")).Contains(engineId, StringComparison.Ordinal))
                {
                    n++;
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return n;
    }
}
