using System.Collections.Concurrent;
using System.Reflection;
using IsoTest.Xunit.Scenarios;

namespace IsoTest.Xunit.Tests.Harness;

/// <summary>One test's outcome in a scenario run.</summary>
internal sealed record ScenarioResult(string Class, string Method, string Outcome, string Output, string Failure, string DisplayName = "");

/// <summary>Everything a scenario run produced.</summary>
internal sealed record ScenarioRun(Type Framework, IReadOnlyList<ScenarioResult> Results, IReadOnlyList<string> CleanupFailures, IReadOnlyList<Recorder.Event> Events)
{
    public ScenarioResult Result(string method, string? @class = null) =>
        Results.Single(r => r.Method == method && (@class is null || r.Class.EndsWith("." + @class, StringComparison.Ordinal)));

    public IEnumerable<Recorder.Event> Of(string definition, string kind) => Events.Where(e => e.Definition == definition && e.Kind == kind);
}

/// <summary>
/// The version-independent half of the scenario harness (linked into the v2 and the v3 test projects): one run at a
/// time, shared runs, the recorder. Each project's <c>ScenarioRunner.cs</c> adds <c>RunCoreAsync</c>, which discovers
/// and executes the scenarios the way that xunit version's runner does.
/// </summary>
internal static partial class ScenarioRunner
{
    // Scenario runs share the Recorder: one at a time.
    private static readonly SemaphoreSlim s_oneAtATime = new(1, 1);

    private static readonly ConcurrentDictionary<string, Lazy<Task<ScenarioRun>>> s_shared = new();

    /// <summary>One run of <paramref name="classPrefix"/> shared by every test that only reads its results (some scenarios take seconds).</summary>
    public static Task<ScenarioRun> RunOnceAsync(string classPrefix) =>
        s_shared.GetOrAdd(classPrefix, p => new Lazy<Task<ScenarioRun>>(() => RunAsync(p))).Value;

    public static async Task<ScenarioRun> RunAsync(string classPrefix, bool serialize = false, bool preEnumerateTheories = true)
    {
        await s_oneAtATime.WaitAsync();
        try
        {
            Recorder.Reset();
            Rendezvous.Reset();
            var (framework, results, cleanup) = await RunCoreAsync(typeof(Recorder).Assembly, classPrefix, serialize, preEnumerateTheories);
            return new ScenarioRun(framework, results, cleanup, [.. Recorder.Events.OrderBy(e => e.Sequence)]);
        }
        finally
        {
            s_oneAtATime.Release();
        }
    }
}
