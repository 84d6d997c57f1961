// A new user's first xunit v3 test, as README's "Add it to your project" shows it: the package, the attribute, one test.
using IsoTest;
using IsoTest.Xunit;
using Xunit;

[assembly: UseIsoTest]

namespace Consumer;

public sealed class Shell : ContainerDefinition
{
    public override ContainerBuilder Configure(ContainerBuilder builder) => builder
        .FromHost()
        .WithCommand("sh", "-c", "echo ready; exec sleep 60")
        .WaitFor(Wait.ForLogMessage("ready"));
}

public class ContainerTests
{
    [Fact, ContainerFixture(typeof(Shell))]
    public async Task Runs_in_its_own_container_on_the_engine(IContainer shell)
    {
        // ISOTEST_BACKEND is unset: auto must find the engine in the package, agent and all.
        Assert.Equal("engine", ContainerBackends.Default.Name);

        // xunit v3 hands every test a token that ends with it (its analyzer asks for it: xUnit1051).
        var result = await shell.ExecAsync(["readlink", "/proc/self/ns/pid"], TestContext.Current.CancellationToken);

        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith("pid:[", result.Stdout);
        Assert.NotEqual(new FileInfo("/proc/self/ns/pid").LinkTarget, result.Stdout.Trim()); // not the test's own PID namespace
    }
}
