using Xunit;

namespace IsoTest.Xunit.Scenarios.RealEngine;

/// <summary>A real container on the default backend (the built-in engine here) that sleeps, marked so the harness can find its processes.</summary>
public sealed class Sleeper : ContainerDefinition
{
    // Started when its test begins (the default): PerTestOnEngine checks that no other Sleeper of the class is alive meanwhile.

    /// <summary>Set by the harness per run; each container gets this plus its own suffix.</summary>
    public static string RunMark { get; set; } = "unset";

    public override ContainerBuilder Configure(ContainerBuilder builder) => builder
        .FromHost()
        .WithCommand("sleep", "3600")
        .WithEnvironment(MarkVariable, $"{RunMark}-{Guid.NewGuid():N}")
        .WithStopTimeout(TimeSpan.FromSeconds(2));

    public const string MarkVariable = "ISOTEST_SCENARIO_MARK";

    /// <summary>The marks of host processes that carry this run's mark (one entry per process).</summary>
    public static IReadOnlyList<string> LiveMarks()
    {
        var marks = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out _))
            {
                continue;
            }

            try
            {
                foreach (var entry in File.ReadAllText(Path.Combine(dir, "environ")).Split('\0'))
                {
                    if (entry.StartsWith(MarkVariable + "=" + RunMark, StringComparison.Ordinal))
                    {
                        marks.Add(entry[(MarkVariable.Length + 1)..]);
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process exited while we looked.
            }
        }

        return marks;
    }

    public static void Record(string test, IContainer sleeper) =>
        Recorder.Used(test, sleeper, detail: sleeper.Spec.Environment[MarkVariable] + "|" + string.Join(",", LiveMarks().Distinct()));
}

/// <summary>The same sleeper, per test, started ahead by the pool.</summary>
public sealed class AheadSleeper : ContainerDefinition
{
    public override int Prestart => 2;

    public override ContainerBuilder Configure(ContainerBuilder builder) => new Sleeper().Configure(builder);
}

/// <summary>Each test claims its container with a file only a used container has: a prestarted one must not have it.</summary>
public class PrestartOnEngine
{
    [Fact, ContainerFixture(typeof(AheadSleeper))]
    public Task A(IContainer aheadSleeper) => ClaimAsync("A", aheadSleeper);

    [Fact, ContainerFixture(typeof(AheadSleeper))]
    public Task B(IContainer aheadSleeper) => ClaimAsync("B", aheadSleeper);

    [Fact, ContainerFixture(typeof(AheadSleeper))]
    public Task C(IContainer aheadSleeper) => ClaimAsync("C", aheadSleeper);

    [Fact, ContainerFixture(typeof(AheadSleeper))]
    public Task D(IContainer aheadSleeper) => ClaimAsync("D", aheadSleeper);

    private static async Task ClaimAsync(string test, IContainer sleeper)
    {
        var claim = await sleeper.ExecAsync(["sh", "-c", "test ! -e /tmp/claimed && echo " + test + " > /tmp/claimed"]);
        Recorder.Used(test, sleeper, detail: claim.ExitCode.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, claim.ExitCode);
    }
}

public class PerTestOnEngine
{
    [Fact, ContainerFixture(typeof(Sleeper))]
    public void A(IContainer sleeper) => Sleeper.Record("A", sleeper);

    [Fact, ContainerFixture(typeof(Sleeper))]
    public void B(IContainer sleeper) => Sleeper.Record("B", sleeper);
}

[ContainerFixture(typeof(Sleeper))]
public class ClassOnEngine(IContainer sleeper)
{
    [Fact]
    public void A() => Sleeper.Record("A", sleeper);

    [Fact]
    public void B() => Sleeper.Record("B", sleeper);
}
