using Xunit.Abstractions;
using Xunit.Sdk;

namespace IsoTest.Xunit.Sdk;

/// <summary>Tells xunit that <see cref="UseIsoTestAttribute"/> selects <see cref="ContainerTestFramework"/>.</summary>
internal sealed class UseIsoTestDiscoverer : ITestFrameworkTypeDiscoverer
{
    public Type GetTestFrameworkType(IAttributeInfo attribute) => typeof(ContainerTestFramework);
}
