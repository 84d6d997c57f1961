using System.Collections.Concurrent;
using System.Reflection;
using IsoTest.Xunit.Scenarios;
using Xunit.Sdk;
using Xunit.v3;

namespace IsoTest.Xunit.Tests.Harness;

/// <summary>
/// Runs scenario test classes (the IsoTest.Xunit.V3.Scenarios assembly) in-process the way a v3 runner does: the
/// framework the assembly selects, its discoverer, its executor, with a message sink that collects the results.
/// The same API as the v2 harness, so the same test files run against both.
/// </summary>
internal static partial class ScenarioRunner
{
    private static async Task<(Type Framework, List<ScenarioResult> Results, List<string> Cleanup)> RunCoreAsync(
        Assembly assembly, string classPrefix, bool serialize, bool preEnumerateTheories)
    {
        // As xunit does: the assembly's ITestFrameworkAttribute names the framework.
        var framework = RegisteredEngineConfig.GetTestFramework(assembly, configFileName: null);
        var options = new Options();
        options.SetValue(TestOptionsNames.Discovery.PreEnumerateTheories, preEnumerateTheories);
        var prefix = "IsoTest.Xunit.Scenarios." + classPrefix;
        var testCases = new List<ITestCase>();
        var discoverer = framework.GetDiscoverer(assembly);
        await discoverer.Find(
            testCase =>
            {
                if (testCase.TestClassName?.StartsWith(prefix, StringComparison.Ordinal) == true)
                {
                    testCases.Add(testCase);
                }

                return new(true);
            },
            options,
            types: null,
            CancellationToken.None);
        if (testCases.Count == 0)
        {
            throw new InvalidOperationException($"No scenario test matches {prefix}.");
        }

        if (serialize)
        {
            // What runners do when they run a selection: test cases travel as strings.
            testCases = [.. testCases.Select(tc => (ITestCase)SerializationHelper.Instance.Deserialize(SerializationHelper.Instance.Serialize(tc))!)];
        }

        var byId = testCases.ToDictionary(tc => tc.UniqueID);
        var execution = new CollectingSink();
        var executor = framework.GetExecutor(assembly);
        await executor.RunTestCases(testCases, execution, options, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromMinutes(2));

        var names = execution.Messages.OfType<ITestStarting>().ToDictionary(m => m.TestUniqueID, m => m.TestDisplayName);
        var results = execution.Messages.OfType<ITestResultMessage>()
            .Where(m => m is ITestPassed or ITestFailed or ITestSkipped)
            .Select(m =>
            {
                var testCase = byId[m.TestCaseUniqueID];
                var args = (testCase as XunitTestCase)?.TestMethodArguments;
                return new ScenarioResult(
                    testCase.TestClassName!,
                    testCase.TestMethodName + (args is { Length: > 0 } ? "(" + string.Join(",", args) + ")" : ""),
                    m switch { ITestPassed => "passed", ITestFailed => "failed", _ => "skipped" },
                    m.Output ?? "",
                    m is ITestFailed f ? string.Join("\n", f.ExceptionTypes.Zip(f.Messages, (t, msg) => $"{t}: {msg}")) : "",
                    names.GetValueOrDefault(m.TestUniqueID, ""));
            })
            .ToList();
        var cleanup = execution.Messages.OfType<IErrorMetadata>()
            .Where(m => m is not ITestFailed)
            .Select(m => m.GetType().Name + ": " + string.Join("\n", m.Messages))
            .ToList();
        return (framework.GetType(), results, cleanup);
    }

    private sealed class CollectingSink : IMessageSink
    {
        public ConcurrentQueue<IMessageSinkMessage> Messages { get; } = new();

        public bool OnMessage(IMessageSinkMessage message)
        {
            Messages.Enqueue(message);
            return true;
        }
    }

    private sealed class Options : ITestFrameworkDiscoveryOptions, ITestFrameworkExecutionOptions
    {
        private readonly ConcurrentDictionary<string, object?> _values = new();

        public TValue? GetValue<TValue>(string name) => _values.TryGetValue(name, out var value) && value is TValue typed ? typed : default;

        public void SetValue<TValue>(string name, TValue value) => _values[name] = value;

        public string ToJson() => "{}";
    }
}
