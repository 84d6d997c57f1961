using Xunit.Sdk;

namespace IsoTest.Xunit;

/// <summary>
/// Runs the assembly's tests with the IsoTest test framework (<see cref="ContainerTestFramework"/>), which starts the
/// containers that <see cref="ContainerFixtureAttribute"/> declares, passes them to tests and removes them afterwards.
/// Put <c>[assembly: UseIsoTest]</c> in any file of the test project. Same as
/// <c>[assembly: TestFramework("IsoTest.Xunit.ContainerTestFramework", "IsoTest.Xunit")]</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = false)]
[TestFrameworkDiscoverer("IsoTest.Xunit.Sdk.UseIsoTestDiscoverer", "IsoTest.Xunit")]
public sealed class UseIsoTestAttribute : Attribute, ITestFrameworkAttribute
{
}
