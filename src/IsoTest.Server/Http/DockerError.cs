using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace IsoTest.Server.Http;

/// <summary>Docker's error body, <c>{"message": "..."}</c>, with the status code dockerd gives for the same failure.</summary>
internal static class DockerError
{
    public static Task WriteAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(Body(message));
    }

    /// <summary>dockerd's error body: <c>{"message":"..."}</c>, lower case.</summary>
    public static string Body(string message) => JsonSerializer.Serialize(new Dictionary<string, string> { ["message"] = message }, ServerJson.Options) + "\n";
}

/// <summary>
/// A failure that becomes a Docker error response: thrown anywhere below an endpoint, turned into
/// <c>{"message": ...}</c> with its status by <see cref="ErrorHandling"/>, so no endpoint words an error twice.
/// </summary>
internal sealed class DockerApiException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;

    public static DockerApiException NoSuchContainer(string id) => new(StatusCodes.Status404NotFound, $"No such container: {id}");

    public static DockerApiException NoSuchExec(string id) => new(StatusCodes.Status404NotFound, $"No such exec instance: {id}");

    public static DockerApiException NoSuchImage(string reference) => new(StatusCodes.Status404NotFound, $"No such image: {reference}");

    public static DockerApiException BadRequest(string message) => new(StatusCodes.Status400BadRequest, message);

    public static DockerApiException Conflict(string message) => new(StatusCodes.Status409Conflict, message);
}

/// <summary>
/// A command the engine could not execute, in the words runc gives dockerd (<c>exec: "x": executable file not found
/// in $PATH</c>, ...): Docker clients, IsoTest's own Docker backend among them, recognise failures by these words.
/// </summary>
internal static class RuncWords
{
    public static string For(ExecFailedException e, string stage) => $"OCI runtime {stage} failed: " + e.Reason switch
    {
        ExecFailure.NotFound => $"unable to start container process: exec: \"{e.Path}\": executable file not found in $PATH: unknown",
        ExecFailure.NotExecutable => $"unable to start container process: exec: \"{e.Path}\": permission denied: unknown",
        ExecFailure.BadWorkingDirectory => $"unable to start container process: chdir to cwd (\"{e.Path}\") set in config.json failed: no such file or directory: unknown",
        ExecFailure.BadUser => $"unable to find user {e.Path}: no matching entries in passwd file",
        _ => e.Message,
    } + $" ({e.Message})";
}

/// <summary>The one place an exception becomes a response; a bad request never takes the server down.</summary>
internal static class ErrorHandling
{
    public static async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (Exception e) when (!context.Response.HasStarted && e is not OperationCanceledException)
        {
            var (status, message) = e switch
            {
                DockerApiException d => (d.Status, d.Message),
                JsonException j => (StatusCodes.Status400BadRequest, $"invalid JSON: {j.Message}"),
                BadHttpRequestException b => (b.StatusCode, b.Message),
                InvalidContainerSpecException s => (StatusCodes.Status400BadRequest, s.Message),
                ExecFailedException x => (StatusCodes.Status400BadRequest, RuncWords.For(x, "create")),
                ImagePullException p => (StatusCodes.Status404NotFound, p.Message),
                IsoTestException i => (StatusCodes.Status500InternalServerError, i.Message),
                _ => (StatusCodes.Status500InternalServerError, $"{e.GetType().Name}: {e.Message}"),
            };
            await DockerError.WriteAsync(context, status, message).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away (a follow or wait it stopped listening to): nothing to answer.
        }
    }
}
