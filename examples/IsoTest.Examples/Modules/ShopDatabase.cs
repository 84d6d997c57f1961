using IsoTest.Modules.PostgreSql;

namespace IsoTest.Examples.Modules;

/// <summary>
/// The PostgreSQL module as an xunit definition: Testcontainers' <c>PostgreSqlBuilder</c>, with readiness and credentials
/// built in. On the built-in engine initdb runs once per test run (in a container from the image) into a template, and
/// every test's server starts from a copy-on-write view of it; on Docker the image's entrypoint makes the database.
/// </summary>
/// <remarks>
/// With a registry, <c>new PostgreSqlBuilder()</c> runs <c>postgres:16</c> on either backend. This machine has none, so the
/// module runs the Debian image .ci/images.sh built (as <c>ISOTEST_POSTGRES_IMAGE=isotest/postgres:15-bookworm</c> would).
/// </remarks>
public sealed class ShopDatabase : ContainerDefinition
{
    public static readonly PostgreSqlBuilder Module = new PostgreSqlBuilder()
        .WithImage(Images.PostgresImage.Image)
        .WithDatabase("shop").WithUsername("clerk").WithPassword("s3cret")
        .WithContainer(c => c.WithMemoryLimit("256m"));

    public override ContainerBuilder Configure(ContainerBuilder builder) => Module.Configure(builder);
}
