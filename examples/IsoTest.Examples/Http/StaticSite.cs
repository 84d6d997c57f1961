using IsoTest.Docker;

namespace IsoTest.Examples.Http;

/// <summary>
/// A small web site served by <c>busybox httpd</c>: two pages and a CGI script, written into the container before it starts.
/// The same definition runs on both backends: the built-in engine uses the busybox installed on this machine
/// (busybox-static), Docker cannot see the host's files and uses an image that contains busybox instead.
/// </summary>
public sealed class StaticSite : ContainerDefinition
{
    public const int Port = 8080;

    /// <summary>Built from busybox-static by .ci/docker-setup.sh (there is no registry to pull from here).</summary>
    public const string DockerImage = "isotest/busybox:latest";

    public override ContainerBuilder Configure(ContainerBuilder builder) =>
        (ContainerBackends.Default is DockerBackend ? builder.FromImage(DockerImage) : builder.FromHost())
        .WithCommand("busybox", "httpd", "-f", "-v", "-p", $"{Port}", "-h", "/www")
        .WithFile("/www/index.html", "<html><body><h1>Hello from busybox httpd</h1></body></html>\n")
        .WithFile("/www/about.html", "<html><body>Served from a container, reached through GetEndpoint.</body></html>\n")
        .WithFile("/www/cgi-bin/greet", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhello, %s\\n' \"$QUERY_STRING\"\n", mode: UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute)
        .WithMemoryLimit("32m")
        .WithCpuLimit(0.5)
        .WithPort(Port)
        .WaitFor(Wait.ForHttp("/", Port));
}
