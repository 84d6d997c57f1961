using IsoTest.Xunit;
using IsoTest.Xunit.Scenarios;

[assembly: UseIsoTest]

// Every scenario test sees this one (lazily shared by the whole run); tests take it as `assemblyWide`.
[assembly: ContainerFixture(typeof(AssemblyWide))]
