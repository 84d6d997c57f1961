using Xunit.v3;

namespace IsoTest.Xunit;

/// <summary>
/// Runs the assembly's tests with the IsoTest test framework for xunit v3 (<see cref="ContainerTestFramework"/>), which
/// starts the containers that <see cref="ContainerFixtureAttribute"/> declares, passes them to tests and removes them
/// afterwards. Put <c>[assembly: UseIsoTest]</c> in any file of the test project.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = false)]
public sealed class UseIsoTestAttribute : Attribute, ITestFrameworkAttribute
{
    /// <summary>The framework xunit runs the assembly with: <see cref="ContainerTestFramework"/>.</summary>
    public Type FrameworkType => typeof(ContainerTestFramework);
}
