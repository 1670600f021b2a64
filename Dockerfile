# The grader as an image, for batch grading inside the cluster (see deploy/job.yaml).
# Build: docker build -t k8s-exercise-grader .   Run: docker run --rm k8s-exercise-grader demo
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY grader ./grader
COPY exercises ./exercises
COPY solutions ./solutions
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 grader
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
WORKDIR /home/grader
ENV PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8
ENTRYPOINT ["grade"]
CMD ["--help"]
