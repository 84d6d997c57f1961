using System.CommandLine;
using System.Globalization;
using IsoTest.Cli.CommandLine;
using IsoTest.Engine.Images;

namespace IsoTest.Cli.Commands;

/// <summary>
/// The engine's image store from the command line, with Docker's command names: <c>pull</c>,
/// <c>images</c>, <c>rmi</c>, <c>load -i FILE</c>, <c>image prune</c>. Pull progress is a bar per layer on a
/// terminal and one line per layer event otherwise (<see cref="PullProgressDisplay"/>).
/// </summary>
internal static class ImageCommands
{
    public static IEnumerable<Command> Create(CliContext context)
    {
        yield return Pull(context);
        yield return Images(context);
        yield return Rmi(context);
        yield return Load(context);
        yield return Image(context);
    }

    private static Option<bool> Quiet(string description)
    {
        var option = DockerFlags.Bool("quiet", description);
        option.Aliases.Add("-q");
        return option;
    }

    private static ImageService Service() => new(new ImageStore(ImageStore.DefaultRoot()));

    private static Command Pull(CliContext context)
    {
        var reference = new Argument<string>("NAME[:TAG|@DIGEST]") { Description = "The image to pull" };
        var quiet = Quiet("Suppress verbose output");
        var command = new Command("pull", "Download an image from a registry into the engine's store") { reference, quiet };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var service = Service();
            var q = parse.GetValue(quiet);
            return await ReportAsync(context, "pull", async () =>
            {
                StoredImage image;
                var display = q ? null : PullProgressDisplay.For(context.Stdout, context);
                try
                {
                    image = await service.PullAsync(parse.GetValue(reference)!, display, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    if (display is not null)
                    {
                        await display.DisposeAsync().ConfigureAwait(false);
                    }
                }

                await context.Stdout.WriteLineAsync(q ? image.Reference.ToString() : $"Digest: {image.ManifestDigest}\nStatus: downloaded {image.Reference}").ConfigureAwait(false);
            }).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Images(CliContext context)
    {
        var quiet = Quiet("Only show image IDs");
        var command = new Command("images", "List the images in the engine's store") { quiet };
        command.SetAction(async (parse, _) =>
        {
            using var service = Service();
            var images = service.List();
            if (!parse.GetValue(quiet))
            {
                await context.Stdout.WriteLineAsync($"{"REPOSITORY",-50} {"TAG",-20} {"IMAGE ID",-14} SIZE").ConfigureAwait(false);
            }

            foreach (var image in images)
            {
                var id = image.ConfigDigest["sha256:".Length..][..12];
                await context.Stdout.WriteLineAsync(parse.GetValue(quiet)
                    ? id
                    : $"{image.Reference.FamiliarName,-50} {image.Reference.Tag ?? "<none>",-20} {id,-14} {Size(image.Size)}").ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    private static Command Rmi(CliContext context)
    {
        var references = new Argument<string[]>("IMAGE") { Description = "Images to untag", Arity = ArgumentArity.OneOrMore };
        var command = new Command("rmi", "Remove images from the engine's store (their layers go with the next image prune)") { references };
        command.SetAction(async (parse, _) =>
        {
            using var service = Service();
            var status = 0;
            foreach (var reference in parse.GetValue(references)!)
            {
                status = await ReportAsync(context, "rmi", async () =>
                {
                    if (!service.Remove(reference))
                    {
                        throw new ImagePullException(reference, "no such image in the engine's store (isotest images lists them).");
                    }

                    await context.Stdout.WriteLineAsync($"Untagged: {reference}").ConfigureAwait(false);
                }).ConfigureAwait(false) | status;
            }

            return status;
        });
        return command;
    }

    private static Command Load(CliContext context)
    {
        var input = DockerFlags.Value<string?>("input", 'i', "string", "Read from a docker save archive or an OCI layout (directory or tar)", v => v);
        var command = new Command("load", "Load images from a docker save archive or an OCI image layout") { input };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var path = parse.GetValue(input);
            if (string.IsNullOrEmpty(path))
            {
                await context.Stderr.WriteLineAsync("isotest load: -i FILE is required (isotest does not read archives from stdin)").ConfigureAwait(false);
                return 125;
            }

            using var service = Service();
            return await ReportAsync(context, "load", async () =>
            {
                foreach (var image in await service.ImportAsync(path, cancellationToken).ConfigureAwait(false))
                {
                    await context.Stdout.WriteLineAsync($"Loaded image: {image.Reference.ToFamiliarString()}").ConfigureAwait(false);
                }
            }).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Image(CliContext context)
    {
        var prune = new Command("prune", "Remove layers and blobs no image refers to");
        prune.SetAction(async (_, _) =>
        {
            using var service = Service();
            var result = service.Prune();
            await context.Stdout.WriteLineAsync($"Deleted {result.Layers} layers, {result.Blobs} blobs\nTotal reclaimed space: {Size(result.BlobBytes)}").ConfigureAwait(false);
            return 0;
        });
        return new Command("image", "Manage the engine's images") { prune };
    }

    private static async Task<int> ReportAsync(CliContext context, string verb, Func<Task> action)
    {
        try
        {
            await action().ConfigureAwait(false);
            return 0;
        }
        catch (ImagePullException e)
        {
            await context.Stderr.WriteLineAsync($"isotest {verb}: {e.Message}").ConfigureAwait(false);
            return 1;
        }
    }

    private static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => (bytes / (double)(1L << 30)).ToString("0.##", CultureInfo.InvariantCulture) + "GB",
        >= 1L << 20 => (bytes / (double)(1L << 20)).ToString("0.##", CultureInfo.InvariantCulture) + "MB",
        >= 1L << 10 => (bytes / (double)(1L << 10)).ToString("0.##", CultureInfo.InvariantCulture) + "kB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + "B",
    };
}
