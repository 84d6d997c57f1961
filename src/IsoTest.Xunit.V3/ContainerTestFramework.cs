using System.Reflection;
using IsoTest.Xunit.Sdk;
using Xunit.v3;

namespace IsoTest.Xunit;

/// <summary>
/// The xunit v3 test framework that gives tests their <see cref="ContainerFixtureAttribute"/> containers. Everything
/// else behaves as xunit's own framework. Select it with <c>[assembly: UseIsoTest]</c>.
/// </summary>
public sealed class ContainerTestFramework : XunitTestFramework
{
    /// <summary>Called by xunit's runners.</summary>
    public ContainerTestFramework()
    {
    }

    /// <summary>Called by xunit's runners with the assembly's configuration file.</summary>
    /// <param name="configFileName">The xunit configuration file (xunit.runner.json), if any.</param>
    public ContainerTestFramework(string? configFileName)
        : base(configFileName)
    {
    }

    /// <inheritdoc/>
    protected override ITestFrameworkDiscoverer CreateDiscoverer(Assembly assembly) =>
        new ContainerTestFrameworkDiscoverer(TestAssemblyOf(assembly));

    /// <inheritdoc/>
    protected override ITestFrameworkExecutor CreateExecutor(Assembly assembly) =>
        new ContainerTestFrameworkExecutor(TestAssemblyOf(assembly));

    // xunit's own description of the assembly (configuration file, collection behaviour, orderers), as its discoverer has it.
    private IXunitTestAssembly TestAssemblyOf(Assembly assembly) => ((XunitTestFrameworkDiscoverer)base.CreateDiscoverer(assembly)).TestAssembly;
}
