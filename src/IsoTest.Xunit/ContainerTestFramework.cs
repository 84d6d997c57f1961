using System.Reflection;
using IsoTest.Xunit.Sdk;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace IsoTest.Xunit;

/// <summary>
/// The xunit v2 test framework that gives tests their <see cref="ContainerFixtureAttribute"/> containers. Everything
/// else behaves as xunit's own framework. Select it with <c>[assembly: UseIsoTest]</c> (or
/// <c>[assembly: TestFramework("IsoTest.Xunit.ContainerTestFramework", "IsoTest.Xunit")]</c>).
/// </summary>
public sealed class ContainerTestFramework : XunitTestFramework
{
    /// <summary>Called by xunit's runners.</summary>
    /// <param name="messageSink">Where diagnostic messages go.</param>
    public ContainerTestFramework(IMessageSink messageSink)
        : base(messageSink)
    {
    }

    /// <inheritdoc/>
    protected override ITestFrameworkDiscoverer CreateDiscoverer(IAssemblyInfo assemblyInfo) =>
        new ContainerTestFrameworkDiscoverer(assemblyInfo, SourceInformationProvider, DiagnosticMessageSink);

    /// <inheritdoc/>
    protected override ITestFrameworkExecutor CreateExecutor(AssemblyName assemblyName) =>
        new ContainerTestFrameworkExecutor(assemblyName, SourceInformationProvider, DiagnosticMessageSink);
}
