using System.Globalization;
using Xunit;
using Xunit.Sdk;
using Xunit.v3;

namespace IsoTest.Xunit.Sdk;

/// <summary>Runs test cases through <see cref="ContainerTestAssemblyRunner"/>.</summary>
internal sealed class ContainerTestFrameworkExecutor(IXunitTestAssembly testAssembly) : XunitTestFrameworkExecutor(testAssembly)
{
    public override async ValueTask RunTestCases(
        IReadOnlyCollection<IXunitTestCase> testCases, IMessageSink executionMessageSink, ITestFrameworkExecutionOptions executionOptions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(executionOptions);

        // What xunit's own executor does before it runs (its helper is private): the assertion library reads the
        // configured print and equivalence limits (xunit.runner.json) from these variables.
        SetEnvironment("XUNIT_ASSERT_EQUIVALENT_MAX_DEPTH", executionOptions.AssertEquivalentMaxDepth());
        SetEnvironment("XUNIT_PRINT_MAX_ENUMERABLE_LENGTH", executionOptions.PrintMaxEnumerableLength());
        SetEnvironment("XUNIT_PRINT_MAX_OBJECT_DEPTH", executionOptions.PrintMaxObjectDepth());
        SetEnvironment("XUNIT_PRINT_MAX_OBJECT_MEMBER_COUNT", executionOptions.PrintMaxObjectMemberCount());
        SetEnvironment("XUNIT_PRINT_MAX_STRING_LENGTH", executionOptions.PrintMaxStringLength());

        // One runner per run: it owns the assembly's containers.
        await new ContainerTestAssemblyRunner(TestAssembly).Run(TestAssembly, testCases, executionMessageSink, executionOptions, cancellationToken);
    }

    private static void SetEnvironment(string name, int? value)
    {
        if (value.HasValue)
        {
            Environment.SetEnvironmentVariable(name, value.Value.ToString(CultureInfo.InvariantCulture));
        }
    }
}
