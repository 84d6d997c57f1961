using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using IsoTest.Server.Containers;
using IsoTest.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace IsoTest.Server.Api;

internal sealed class ExecCreateRequest
{
    public bool AttachStdin { get; set; }
    public bool AttachStdout { get; set; }
    public bool AttachStderr { get; set; }
    public bool Tty { get; set; }
    public List<string>? Cmd { get; set; }
    public List<string>? Env { get; set; }
    public string? WorkingDir { get; set; }
    public string? User { get; set; }
}

/// <summary>The server's exec instances, by id.</summary>
internal sealed class ExecTable
{
    private readonly ConcurrentDictionary<string, ExecInstance> _execs = new();

    public ExecInstance Add(ServerContainer container, ExecCreateRequest request)
    {
        var exec = new ExecInstance(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)), container, request);
        _execs[exec.Id] = exec;
        return exec;
    }

    public ExecInstance Find(string id) => _execs.GetValueOrDefault(id) ?? throw DockerApiException.NoSuchExec(id);

    /// <summary>Forgets the instances of a removed container.</summary>
    public void Forget(ServerContainer container)
    {
        foreach (var exec in _execs.Values.Where(e => e.Container == container))
        {
            _execs.TryRemove(exec.Id, out _);
        }
    }
}

/// <summary>One exec instance: made by POST /containers/{id}/exec, run by POST /exec/{id}/start.</summary>
internal sealed class ExecInstance(string id, ServerContainer container, ExecCreateRequest request)
{
    public string Id { get; } = id;

    public ServerContainer Container { get; } = container;

    public ExecCreateRequest Request { get; } = request;

    public bool Running { get; set; }

    public int? ExitCode { get; set; }
}

internal sealed class ExecStartRequest
{
    public bool Detach { get; set; }
    public bool Tty { get; set; }
}

/// <summary>/containers/{id}/exec and /exec/{id}/...: a further command in a running container.</summary>
internal static class ExecEndpoints
{
    public static ExecStartRequest Parse(byte[] body) =>
        body.Length == 0 ? new() : System.Text.Json.JsonSerializer.Deserialize<ExecStartRequest>(body, ServerJson.Options) ?? new();

    /// <summary>Checks the start request, then (when called) runs the command and writes its output as multiplexed frames; the exit code goes on the instance.</summary>
    public static HijackHandler Start(ExecInstance exec, ExecStartRequest start)
    {
        if (start.Tty)
        {
            throw DockerApiException.BadRequest("a TTY (-t) is not supported by IsoTest's server yet: run exec without -t");
        }

        if (exec.Running || exec.ExitCode is not null)
        {
            throw DockerApiException.Conflict($"exec instance {exec.Id} has already been started");
        }

        exec.Running = true;
        return (stream, ended) => RunAsync(exec, stream, ended);
    }

    private static async Task RunAsync(ExecInstance exec, Stream stream, CancellationToken ended)
    {

        try
        {
            var request = exec.Request;
            var result = exec.Container.Inner is IsoTest.Engine.Containers.EngineContainer engine
                ? await engine.ExecAsync(request.Cmd!, request.Env ?? [], request.User, request.WorkingDir, ended).ConfigureAwait(false)
                : await exec.Container.Inner.ExecAsync(request.Cmd!, ended).ConfigureAwait(false);
            exec.ExitCode = result.ExitCode;
            if (exec.Request.AttachStdout && result.Stdout.Length > 0)
            {
                await StreamFrames.WriteAsync(stream, LogStream.Stdout, Encoding.UTF8.GetBytes(result.Stdout), ended).ConfigureAwait(false);
            }

            if (exec.Request.AttachStderr && result.Stderr.Length > 0)
            {
                await StreamFrames.WriteAsync(stream, LogStream.Stderr, Encoding.UTF8.GetBytes(result.Stderr), ended).ConfigureAwait(false);
            }
        }
        catch (ExecFailedException e)
        {
            // dockerd reports a command it cannot start on the stream, and the exit code as 126/127.
            exec.ExitCode = e.Reason == ExecFailure.NotFound ? 127 : 126;
            await StreamFrames.WriteAsync(stream, LogStream.Stderr, Encoding.UTF8.GetBytes(RuncWords.For(e, "exec") + "\n"), ended).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The client went away; the exit code is still recorded for GET /exec/{id}/json.
        }
        finally
        {
            exec.Running = false;
        }

        await stream.FlushAsync(ended).ConfigureAwait(false);
    }

    public static void Map(IEndpointRouteBuilder app, ContainerTable table, ExecTable execs)
    {
        app.MapPost("/containers/{id}/exec", async (string id, HttpContext context) =>
        {
            var container = table.Find(id);
            var request = await ServerJson.ReadAsync(context.Request, new ExecCreateRequest(), context.RequestAborted).ConfigureAwait(false);
            if (request.Cmd is not { Count: > 0 })
            {
                throw DockerApiException.BadRequest("No exec command specified");
            }

            if (!container.Running)
            {
                throw DockerApiException.Conflict($"Container {container.Id} is not running");
            }

            if (request.AttachStdin || request.Tty)
            {
                throw DockerApiException.BadRequest("exec with stdin (-i) or a TTY (-t) is not supported by IsoTest's server yet: pass input as a file (docker cp) or an argument");
            }

            if (container.Inner is not IsoTest.Engine.Containers.EngineContainer && (request.Env is { Count: > 0 } || !string.IsNullOrEmpty(request.WorkingDir) || !string.IsNullOrEmpty(request.User)))
            {
                throw DockerApiException.BadRequest("exec with Env, WorkingDir or User is served only for containers of the built-in engine: wrap the command in sh -c");
            }

            var exec = execs.Add(container, request);
            return Results.Json(new Dictionary<string, string> { ["Id"] = exec.Id }, ServerJson.Options, statusCode: StatusCodes.Status201Created);
        });

        app.MapPost("/exec/{id}/start", async (string id, HttpContext context) =>
        {
            var exec = execs.Find(id);
            var body = await ServerJson.ReadAsync(context.Request, new ExecStartRequest(), context.RequestAborted).ConfigureAwait(false);
            var handler = Start(exec, body);
            if (body.Detach)
            {
                _ = handler(Stream.Null, CancellationToken.None);
                return;
            }

            await handler(await Hijack.StartPlainAsync(context).ConfigureAwait(false), context.RequestAborted).ConfigureAwait(false);
        });

        // No TTY, so nothing to resize; dockerd accepts it all the same for a known instance.
        app.MapPost("/exec/{id}/resize", (string id) =>
        {
            execs.Find(id);
            return Results.Ok();
        });

        app.MapGet("/exec/{id}/json", (string id) =>
        {
            var exec = execs.Find(id);
            return Results.Json(new Dictionary<string, object?>
            {
                ["ID"] = exec.Id,
                ["Running"] = exec.Running,
                ["ExitCode"] = exec.ExitCode,
                ["ProcessConfig"] = new Dictionary<string, object?> { ["tty"] = false, ["entrypoint"] = exec.Request.Cmd![0], ["arguments"] = exec.Request.Cmd.Skip(1).ToArray(), ["privileged"] = false },
                ["OpenStdin"] = false,
                ["OpenStderr"] = exec.Request.AttachStderr,
                ["OpenStdout"] = exec.Request.AttachStdout,
                ["CanRemove"] = false,
                ["ContainerID"] = exec.Container.Id,
                ["DetachKeys"] = "",
                ["Pid"] = 0,
            }, ServerJson.Options);
        });
    }
}
