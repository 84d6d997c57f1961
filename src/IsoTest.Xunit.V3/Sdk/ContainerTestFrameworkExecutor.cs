using Xunit.Sdk;
using Xunit.v3;

namespace IsoTest.Xunit.Sdk;

/// <summary>Runs test cases through <see cref="ContainerTestAssemblyRunner"/>.</summary>
internal sealed class ContainerTestFrameworkExecutor(IXunitTestAssembly testAssembly) : XunitTestFrameworkExecutor(testAssembly)
{
    public override async ValueTask RunTestCases(
        IReadOnlyCollection<IXunitTestCase> testCases, IMessageSink executionMessageSink, ITestFrameworkExecutionOptions executionOptions, CancellationToken cancellationToken)
    {
        // One runner per run: it owns the assembly's containers.
        await new ContainerTestAssemblyRunner(TestAssembly).Run(TestAssembly, testCases, executionMessageSink, executionOptions, cancellationToken);
    }
}
