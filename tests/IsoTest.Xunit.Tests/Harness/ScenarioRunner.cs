using System.Collections.Concurrent;
using IsoTest.Xunit.Scenarios;
using Xunit;
using Xunit.Abstractions;
using Xunit.Sdk;

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
/// Runs scenario test classes (the IsoTest.Xunit.Scenarios assembly) in-process the way a runner does: the framework
/// the assembly selects, its discoverer, its executor, with a message sink that collects the results.
/// </summary>
internal static class ScenarioRunner
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
            var assembly = typeof(Recorder).Assembly;
            var assemblyInfo = Reflector.Wrap(assembly);
            var diagnostics = new CollectingSink();

            // As xunit does: the assembly's ITestFrameworkAttribute names a discoverer that names the framework type.
            var attribute = assemblyInfo.GetCustomAttributes(typeof(ITestFrameworkAttribute)).Single();
            var discovererAttribute = attribute.GetCustomAttributes(typeof(TestFrameworkDiscovererAttribute)).Single();
            var frameworkType = ExtensibilityPointFactory.GetTestFrameworkTypeDiscoverer(diagnostics, discovererAttribute).GetTestFrameworkType(attribute);
            using var framework = (ITestFramework)Activator.CreateInstance(frameworkType, diagnostics)!;

            var options = new Options();
            options.SetValue("xunit.discovery.PreEnumerateTheories", preEnumerateTheories);
            var discovery = new CollectingSink();
            using var discoverer = framework.GetDiscoverer(assemblyInfo);
            discoverer.Find(includeSourceInformation: false, discovery, options);
            await discovery.Finished.WaitAsync(TimeSpan.FromMinutes(1));
            var prefix = "IsoTest.Xunit.Scenarios." + classPrefix;
            var testCases = discovery.Messages.OfType<ITestCaseDiscoveryMessage>()
                .Select(m => m.TestCase)
                .Where(tc => tc.TestMethod.TestClass.Class.Name.StartsWith(prefix, StringComparison.Ordinal))
                .ToList();
            if (testCases.Count == 0)
            {
                throw new InvalidOperationException($"No scenario test matches {prefix}.");
            }

            using var executor = framework.GetExecutor(assembly.GetName());
            if (serialize)
            {
                // What runners do when they run a selection: test cases travel as strings.
                testCases = [.. testCases.Select(tc => executor.Deserialize(discoverer.Serialize(tc)))];
            }

            var execution = new CollectingSink();
            executor.RunTests(testCases, execution, options);
            await execution.Finished.WaitAsync(TimeSpan.FromMinutes(2));

            var results = execution.Messages.OfType<ITestResultMessage>()
                .Where(m => m is ITestPassed or ITestFailed or ITestSkipped)
                .Select(m => new ScenarioResult(
                    m.TestCase.TestMethod.TestClass.Class.Name,
                    m.TestCase.TestMethod.Method.Name + (m.TestCase.TestMethodArguments is { Length: > 0 } args ? "(" + string.Join(",", args) + ")" : ""),
                    m switch { ITestPassed => "passed", ITestFailed => "failed", _ => "skipped" },
                    m.Output ?? "",
                    m is ITestFailed f ? string.Join("\n", f.ExceptionTypes.Zip(f.Messages, (t, msg) => $"{t}: {msg}")) : "",
                    m.Test.DisplayName))
                .ToList();
            var cleanup = execution.Messages.OfType<IFailureInformation>()
                .Where(m => m is not ITestFailed)
                .Select(m => m.GetType().Name + ": " + string.Join("\n", m.Messages))
                .ToList();
            return new ScenarioRun(frameworkType, results, cleanup, [.. Recorder.Events.OrderBy(e => e.Sequence)]);
        }
        finally
        {
            s_oneAtATime.Release();
        }
    }

    private sealed class CollectingSink : LongLivedMarshalByRefObject, IMessageSink
    {
        private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentQueue<IMessageSinkMessage> Messages { get; } = new();

        public Task Finished => _finished.Task;

        public bool OnMessage(IMessageSinkMessage message)
        {
            Messages.Enqueue(message);
            if (message is ITestAssemblyFinished or IDiscoveryCompleteMessage)
            {
                _finished.TrySetResult();
            }

            return true;
        }
    }

    private sealed class Options : ITestFrameworkDiscoveryOptions, ITestFrameworkExecutionOptions
    {
        private readonly ConcurrentDictionary<string, object?> _values = new();

        public TValue GetValue<TValue>(string name) => _values.TryGetValue(name, out var value) && value is TValue typed ? typed : default!;

        public void SetValue<TValue>(string name, TValue value) => _values[name] = value;
    }
}
